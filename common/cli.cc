#include "common/cli.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace prolong {

void ConfigureCli(CLI::App& app) {
  app.failure_message(CLI::FailureMessage::help);
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(36);
}

void AddServerFlags(CLI::App& app, ServerOptions& options) {
  app.add_option("--address", options.address, "gRPC listen address, host:port (port 0: any)");
  app.add_option("--metrics-address", options.metrics_address,
                 "Prometheus /metrics listen address, host:port (port 0: any; empty: off)");
  app.add_option_function<double>(
         "--shutdown-grace-seconds",
         [&options](double seconds) { options.shutdown_grace = absl::Seconds(seconds); },
         "Time in-flight calls get to finish on SIGTERM")
      ->default_str(absl::StrCat(absl::ToDoubleSeconds(options.shutdown_grace)))
      ->check(CLI::NonNegativeNumber);
}

}  // namespace prolong
