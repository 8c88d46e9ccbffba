// prolong trainer worker: one rank of a training gang (trainer/worker/worker.h). Serves health,
// reflection and /metrics while it trains; many workers share a machine, so both ports default
// to 0. Exits 0 when the stage's plan is trained, or after SIGTERM/SIGINT: during training the
// gang stops after the current step and checkpoints it; before training there is nothing to save
// and it stops at once. Any error is one line on stderr and exit code 1.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/notification.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/server.h"
#include "common/shutdown_signal.h"
#include "trainer/device_info.h"
#include "trainer/worker/worker.h"
#include "trainer/worker/worker_options.h"

namespace {

// Set by the signal-waiting thread, which may outlive main's locals.
std::atomic<int> received_signal{0};

[[noreturn]] void ExitNow(int code) {
  std::cout.flush();
  std::fflush(nullptr);
  // Skips destructors: process groups whose peers are gone may block in theirs.
  std::_Exit(code);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "trainer: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  prolong::trainer::PreferExpandableCudaSegments();  // Before anything touches a GPU.
  prolong::ServerOptions server_options;
  server_options.component = "trainer";
  server_options.address = "127.0.0.1:0";
  server_options.metrics_address = "127.0.0.1:0";
  prolong::worker::WorkerOptions options;
  CLI::App app(
      "prolong trainer worker: one rank of a training gang. Joins the gang, trains the stage's "
      "plan from the datamixer, resumes from and writes checkpoints. Usually started by "
      "`prolongctl train`.");
  prolong::worker::AddRankFlags(app, options);
  prolong::worker::AddJobFlags(app, options);
  if (auto exit_code = prolong::ParseServiceCommandLine(app, server_options, argc, argv)) {
    return *exit_code;
  }
  prolong::InstallShutdownSignalHandlers();  // Before any thread starts.
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<prolong::worker::Worker>> worker =
      prolong::worker::Worker::Create(options, *registry);
  if (!worker.ok()) return Fail(worker.status());
  absl::StatusOr<std::unique_ptr<prolong::Server>> server =
      prolong::Server::Start(server_options, {}, registry);
  if (!server.ok()) return Fail(server.status());
  std::cout << "trainer listening: grpc=" << (*server)->address()
            << " metrics=" << (*server)->metrics_address();
  if (options.host_rendezvous) std::cout << " rendezvous=" << (*worker)->rendezvous_address();
  std::cout << std::endl;
  PROLONG_LOG(INFO) << "trainer rank " << options.rank << " of " << options.world_size
                    << " serving gRPC on " << (*server)->address() << ", /metrics on "
                    << ((*server)->metrics_address().empty() ? "(off)"
                                                             : (*server)->metrics_address())
                    << "; " << prolong::trainer::GetDeviceInfo().ToString();

  std::thread([] { received_signal = prolong::WaitForShutdownSignal(); }).detach();
  absl::Notification done;
  absl::StatusOr<prolong::worker::Outcome> outcome;
  std::thread runner([&] {
    outcome = (*worker)->Run();
    done.Notify();
  });
  bool stopping = false;
  while (!done.WaitForNotificationWithTimeout(absl::Milliseconds(50))) {
    const int signal_number = received_signal.load();
    if (signal_number == 0 || stopping) continue;
    stopping = true;
    if ((*worker)->RequestStop()) {
      PROLONG_LOG(INFO) << "received " << strsignal(signal_number)
                        << ": stopping after the current step, with a checkpoint";
      continue;
    }
    PROLONG_LOG(INFO) << "received " << strsignal(signal_number)
                      << " before training started: stopping";
    (*server)->Shutdown();
    PROLONG_LOG(INFO) << "trainer stopped";
    ExitNow(0);
  }
  runner.join();
  (*server)->Shutdown();
  if (!outcome.ok()) {
    Fail(outcome.status());
    ExitNow(1);
  }
  PROLONG_LOG(INFO) << "trainer stopped";
  return 0;
}
