// prolong scheduler: runs, stages, worker gangs and restarts; what prolongctl talks to
// (scheduler/scheduler_service.h). Serves health, reflection and /metrics.

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/install.h"
#include "common/security.h"
#include "common/server.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "scheduler/scheduler_service.h"

namespace {

// Workers cannot connect to a wildcard address: they are told this machine's name instead.
std::string AdvertisedAddress(const std::string& bound) {
  const size_t colon = bound.rfind(':');
  const std::string host = bound.substr(0, colon);
  if (host != "0.0.0.0" && host != "[::]" && host != "::") return bound;
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return std::string(name) + bound.substr(colon);
}

}  // namespace

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "scheduler";
  options.address = "127.0.0.1:7400";
  options.metrics_address = "127.0.0.1:7401";
  // Run specs and worker reports are kilobytes; a request of megabytes is a mistake or abuse.
  options.max_receive_message_bytes = 4 << 20;
  prolong::scheduler::SchedulerServiceOptions scheduler;
  scheduler.state_dir = prolong::ProlongHome() + "/scheduler";
  scheduler.datamixer_address = "127.0.0.1:7410";
  scheduler.evaluator_address = "127.0.0.1:7420";
  int heartbeat_interval_ms = 1000;
  int restart_backoff_ms = 1000;
  CLI::App app(
      "prolong scheduler: runs multi-stage training runs as gangs of trainer workers, restarts "
      "them from checkpoints, and is what `prolongctl run` talks to.");
  app.add_option("--state-dir", scheduler.state_dir,
                 "The run store (RocksDB, one scheduler at a time) and runs' work directories")
      ->capture_default_str();
  app.add_option("--trainer-binary", scheduler.trainer_binary,
                 "The worker binary gangs run (default: the trainer beside this binary, else "
                 "Bazel's bazel-bin/services/trainer/trainer)");
  app.add_option("--datamixer", scheduler.datamixer_address,
                 "The datamixer of runs whose spec names none")
      ->capture_default_str();
  app.add_option("--evaluator", scheduler.evaluator_address,
                 "The evaluator of runs whose spec names none")
      ->capture_default_str();
  app.add_option("--allowed-root", scheduler.path_roots,
                 "A directory paths in run specs may lie under (repeat for more); none: any "
                 "absolute path");
  std::string slurm_conf;
  app.add_option("--slurm-conf", slurm_conf,
                 "slurm.conf for the Slurm launcher's commands and its workers (default: "
                 "Slurm's own)");
  std::string advertise;
  app.add_option("--advertise-address", advertise,
                 "host:port workers reach the scheduler at (default: the bound address; this "
                 "machine's name when bound to all interfaces)");
  app.add_option("--heartbeat-interval-ms", heartbeat_interval_ms, "How often workers heartbeat")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--restart-backoff-ms", restart_backoff_ms,
                 "Wait before a gang's restart; doubled for each further one in a row without a "
                 "checkpoint between them, to a minute")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-watches", scheduler.max_watches,
                 "WatchRun and StreamLogs calls served at once; beyond, RESOURCE_EXHAUSTED")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-unfinished-runs", scheduler.max_unfinished_runs,
                 "Runs not yet ended (side jobs aside); SubmitRun beyond, RESOURCE_EXHAUSTED")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  prolong::AddAuthTokenFlag(app, scheduler.auth_token);
  prolong::ClientSecurityFiles outgoing;
  prolong::AddClientSecurityFlags(
      app, outgoing, "client-", /*with_token=*/true, /*from_environment=*/false,
      "Calls to the datamixer and the evaluator (workers get the same TLS files)");
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  if (scheduler.trainer_binary.empty()) {
    absl::StatusOr<std::string> trainer =
        prolong::FindBinary("trainer", /*path=*/"", "--trainer-binary");
    if (!trainer.ok()) {
      std::cerr << "scheduler: " << trainer.status().message() << std::endl;
      return 1;
    }
    scheduler.trainer_binary = *std::move(trainer);
  }
  absl::StatusOr<prolong::ClientSecurity> security =
      prolong::LoadClientSecurity(outgoing, "--client-");
  if (!security.ok()) {
    std::cerr << "scheduler: " << security.status().message() << std::endl;
    return 1;
  }
  scheduler.outgoing = *std::move(security);
  // Workers start in directories of their own.
  for (std::string* path : {&outgoing.tls_ca, &outgoing.tls_cert, &outgoing.tls_key}) {
    if (!path->empty()) *path = std::filesystem::absolute(*path).string();
  }
  scheduler.worker_tls = outgoing;
  scheduler.worker_tls.token_file.clear();
  if (!slurm_conf.empty()) scheduler.slurm_env["SLURM_CONF"] = slurm_conf;
  scheduler.heartbeat_interval = absl::Milliseconds(heartbeat_interval_ms);
  scheduler.restart_backoff = absl::Milliseconds(restart_backoff_ms);
  auto registry = std::make_shared<prometheus::Registry>();
  auto service = prolong::scheduler::SchedulerService::Create(scheduler, *registry);
  if (!service.ok()) {
    std::cerr << "scheduler: " << service.status().message() << std::endl;
    return 1;
  }
  return prolong::RunServerUntilSignal(
      options, {prolong::Hosted<prolong::v1::Scheduler>(service->get())}, registry,
      [&service, &advertise](const prolong::Server& server) {
        (*service)->Start(advertise.empty() ? AdvertisedAddress(server.address()) : advertise);
      });
}
