// prolong evaluator: long-context evaluation of checkpoints.
// Serves health, reflection and /metrics; the Evaluator methods answer UNIMPLEMENTED for now.

#include <memory>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/server.h"
#include "prolong/v1/evaluator.grpc.pb.h"

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "evaluator";
  options.address = "127.0.0.1:7420";
  options.metrics_address = "127.0.0.1:7421";
  CLI::App app("prolong evaluator: long-context evaluation of checkpoints.");
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  prolong::v1::Evaluator::Service service;
  return prolong::RunServerUntilSignal(options, {prolong::Hosted<prolong::v1::Evaluator>(&service)},
                                       std::make_shared<prometheus::Registry>());
}
