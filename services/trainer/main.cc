// prolong trainer worker: one rank of a training gang. Serves health, reflection and /metrics
// (its training loop arrives with the trainer). Many workers share a machine, so both ports
// default to 0.

#include <memory>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/log.h"
#include "common/server.h"
#include "trainer/device_info.h"

int main(int argc, char** argv) {
  prolong::ServerOptions options;
  options.component = "trainer";
  options.address = "127.0.0.1:0";
  options.metrics_address = "127.0.0.1:0";
  CLI::App app("prolong trainer worker: one rank of a training gang.");
  if (auto exit_code = prolong::ParseServiceCommandLine(app, options, argc, argv)) {
    return *exit_code;
  }
  PROLONG_LOG(INFO) << prolong::trainer::GetDeviceInfo().ToString();
  return prolong::RunServerUntilSignal(options, {}, std::make_shared<prometheus::Registry>());
}
