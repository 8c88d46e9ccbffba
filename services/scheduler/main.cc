// prolong scheduler: runs, stages, worker gangs and restarts; what prolongctl talks to.
// Serves health, reflection and /metrics; the Scheduler methods answer UNIMPLEMENTED for now.

#include <memory>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/server.h"
#include "prolong/v1/scheduler.grpc.pb.h"

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "scheduler";
  options.address = "127.0.0.1:7400";
  options.metrics_address = "127.0.0.1:7401";
  CLI::App app(
      "prolong scheduler: runs, stages, worker gangs and restarts; what prolongctl talks to.");
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  prolong::v1::Scheduler::Service service;
  return prolong::RunServerUntilSignal(options, {prolong::Hosted<prolong::v1::Scheduler>(&service)},
                                       std::make_shared<prometheus::Registry>());
}
