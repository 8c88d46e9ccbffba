// prolong trainer worker: one rank of a training gang (trainer/worker/worker.h). Serves health,
// reflection and /metrics while it trains; many workers share a machine, so both ports default
// to 0. Exits 0 when the stage's plan is trained, or after SIGTERM/SIGINT: during training the
// gang stops after the current step and checkpoints it; before training there is nothing to save
// and it stops at once. Any error is one line on stderr and an exit code that says whether
// another attempt may help (common/exit_codes.h).
//
// With --scheduler the worker is in scheduler mode: it registers with the scheduler for its run
// and attempt (rank 0 with the store it hosts, the others to learn where it is), heartbeats,
// reports its steps and checkpoints, and stops when told (trainer/worker/scheduler_link.h).

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/cli.h"
#include "common/exit_codes.h"
#include "common/log.h"
#include "common/security.h"
#include "common/server.h"
#include "common/shutdown_signal.h"
#include "trainer/device_info.h"
#include "trainer/worker/scheduler_link.h"
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
  return prolong::ExitCodeFor(status);
}

struct SchedulerFlags {
  std::string address;
  std::string run_id;
  int64_t attempt = 0;
  // Where rank 0 hosts the gang's store: this machine's name under Slurm, else loopback.
  std::string rendezvous_host;
  int rendezvous_port = 0;
};

// The rank an engine gave this process when --rank is absent: Slurm's task id, a Kubernetes
// Indexed Job's index, or torchrun's RANK.
absl::Status RankFromEnvironment(int& rank) {
  for (const char* name : {"SLURM_PROCID", "JOB_COMPLETION_INDEX", "RANK"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    if (!absl::SimpleAtoi(value, &rank)) {
      return absl::InvalidArgumentError(absl::StrCat(name, "=", value, ": not a rank"));
    }
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

std::string DefaultRendezvousHost() {
  if (std::getenv("SLURM_PROCID") == nullptr) return "127.0.0.1";
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  prolong::trainer::PreferExpandableCudaSegments();  // Before anything touches a GPU.
  prolong::ServerOptions server_options;
  server_options.component = "trainer";
  server_options.address = "127.0.0.1:0";
  server_options.metrics_address = "127.0.0.1:0";
  prolong::worker::WorkerOptions options;
  SchedulerFlags scheduler;
  CLI::App app(
      "prolong trainer worker: one rank of a training gang. Joins the gang, trains the stage's "
      "plan from the datamixer, resumes from and writes checkpoints. Usually started by "
      "`prolongctl train` or by the scheduler.");
  prolong::worker::AddRankFlags(app, options);
  prolong::worker::AddJobFlags(app, options);
  const char* group = "Scheduler mode";
  app.add_option("--scheduler", scheduler.address,
                 "host:port of the scheduler: register there for --run-id and --attempt, learn "
                 "the gang's rendezvous, heartbeat and report")
      ->group(group);
  app.add_option("--run-id", scheduler.run_id, "The run this worker trains")->group(group);
  app.add_option("--attempt", scheduler.attempt, "The run's gang attempt this worker is part of")
      ->group(group);
  app.add_option("--rendezvous-host", scheduler.rendezvous_host,
                 "Rank 0: the host name or address its store listens on and the others connect "
                 "to (default: this machine's name under Slurm, else 127.0.0.1)")
      ->group(group);
  app.add_option("--rendezvous-port", scheduler.rendezvous_port,
                 "Rank 0: the store's port (0: any)")
      ->group(group);
  if (auto exit_code = prolong::ParseServiceCommandLine(app, server_options, argc, argv)) {
    return *exit_code;
  }
  const bool scheduled = !scheduler.address.empty();
  if (app.count("--rank") == 0) {
    if (absl::Status status = RankFromEnvironment(options.rank); !status.ok()) return Fail(status);
  }
  if (scheduled) {
    if (scheduler.run_id.empty() || scheduler.attempt < 1) {
      return Fail(absl::InvalidArgumentError("--scheduler needs --run-id and --attempt >= 1"));
    }
    if (options.rank == 0) {
      options.host_rendezvous = true;
      options.rendezvous_address = absl::StrCat(
          scheduler.rendezvous_host.empty() ? DefaultRendezvousHost() : scheduler.rendezvous_host,
          ":", scheduler.rendezvous_port);
    } else {
      options.rendezvous_address = "(from the scheduler)";  // CheckRank wants one; set below
    }
  }
  prolong::InstallShutdownSignalHandlers();  // Before any thread starts.
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<prolong::Server>> server =
      prolong::Server::Start(server_options, {}, registry);
  if (!server.ok()) return Fail(server.status());

  // In scheduler mode, the other ranks learn where rank 0's store is before they build the
  // worker; rank 0 registers once its store listens.
  std::unique_ptr<prolong::worker::SchedulerLink> link;
  prolong::worker::SchedulerLinkOptions link_options;
  link_options.scheduler_address = scheduler.address;
  link_options.run_id = scheduler.run_id;
  link_options.attempt = scheduler.attempt;
  link_options.rank = options.rank;
  link_options.metrics_address = (*server)->metrics_address();
  link_options.register_timeout = absl::Seconds(options.rendezvous_timeout_seconds);
  if (scheduled) {
    absl::StatusOr<prolong::ClientSecurity> security =
        prolong::LoadClientSecurity(options.client_tls, "--client-");
    if (!security.ok()) return Fail(security.status());
    link_options.security = *std::move(security);
  }
  if (scheduled && options.rank != 0) {
    absl::StatusOr<std::unique_ptr<prolong::worker::SchedulerLink>> registered =
        prolong::worker::SchedulerLink::Register(link_options);
    if (!registered.ok()) return Fail(registered.status());
    link = *std::move(registered);
    options.rendezvous_address = link->assignment().rendezvous_address();
  }
  absl::StatusOr<std::unique_ptr<prolong::worker::Worker>> worker =
      prolong::worker::Worker::Create(options, *registry);
  if (!worker.ok()) return Fail(worker.status());
  if (scheduled && options.rank == 0) {
    link_options.rendezvous_address = (*worker)->rendezvous_address();
    absl::StatusOr<std::unique_ptr<prolong::worker::SchedulerLink>> registered =
        prolong::worker::SchedulerLink::Register(link_options);
    if (!registered.ok()) return Fail(registered.status());
    link = *std::move(registered);
  }
  std::cout << "trainer listening: grpc=" << (*server)->address()
            << " metrics=" << (*server)->metrics_address();
  if (options.host_rendezvous) std::cout << " rendezvous=" << (*worker)->rendezvous_address();
  std::cout << std::endl;
  PROLONG_LOG(INFO) << "trainer rank " << options.rank << " of " << options.world_size
                    << " serving gRPC on " << (*server)->address() << ", /metrics on "
                    << ((*server)->metrics_address().empty() ? "(off)"
                                                             : (*server)->metrics_address())
                    << "; " << prolong::trainer::GetDeviceInfo().ToString();
  if (link != nullptr) {
    prolong::worker::SchedulerLink* scheduler_link = link.get();
    const bool reports = options.rank == 0;
    (*worker)->SetObserver({[scheduler_link, reports](const prolong::v1::StepMetrics& metrics) {
                              scheduler_link->SetStep(metrics.step());
                              if (reports) scheduler_link->ReportMetrics(metrics);
                            },
                            [scheduler_link](const prolong::v1::Checkpoint& checkpoint) {
                              scheduler_link->ReportCheckpoint(checkpoint);
                            }});
    prolong::worker::Worker* running = worker->get();
    link->StartHeartbeats([running](prolong::v1::WorkerAction action) {
      if (action == prolong::v1::WORKER_ACTION_CHECKPOINT_AND_STOP) {
        if (running->RequestStop()) return;
      }
      PROLONG_LOG(INFO) << "the scheduler stopped this worker";
      ExitNow(prolong::kExitRetryable);
    });
  }

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
  link.reset();
  (*server)->Shutdown();
  if (!outcome.ok()) ExitNow(Fail(outcome.status()));
  PROLONG_LOG(INFO) << "trainer stopped";
  return 0;
}
