// prolong datamixer: tokenized document shards, stage plans and packed batches.
// Serves health, reflection and /metrics; the DataMixer methods answer UNIMPLEMENTED for now.

#include <memory>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/server.h"
#include "prolong/v1/datamixer.grpc.pb.h"

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "datamixer";
  options.address = "127.0.0.1:7410";
  options.metrics_address = "127.0.0.1:7411";
  CLI::App app("prolong datamixer: tokenized document shards, stage plans and packed batches.");
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  prolong::v1::DataMixer::Service service;
  return prolong::RunServerUntilSignal(options, {prolong::Hosted<prolong::v1::DataMixer>(&service)},
                                       std::make_shared<prometheus::Registry>());
}
