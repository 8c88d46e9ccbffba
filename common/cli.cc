#include "common/cli.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace prolong {

void ConfigureCli(CLI::App& app) {
  app.failure_message(CLI::FailureMessage::help);
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(40);
}

void AddServerFlags(CLI::App& app, ServerOptions& options) {
  app.add_option("--address", options.address, "gRPC listen address, host:port (port 0: any)");
  app.add_option_function<std::string>(
         "--metrics-address",
         [&options](const std::string& address) {
           options.metrics_address = address == "off" ? "" : address;
         },
         "Prometheus /metrics listen address, host:port (port 0: any), or off")
      ->default_str(options.metrics_address.empty() ? "off" : options.metrics_address);
  app.add_option_function<double>(
         "--shutdown-grace-seconds",
         [&options](double seconds) { options.shutdown_grace = absl::Seconds(seconds); },
         "Time in-flight calls get to finish on SIGTERM")
      ->default_str(absl::StrCat(absl::ToDoubleSeconds(options.shutdown_grace)))
      ->check(CLI::NonNegativeNumber);
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

std::optional<int> ParseServiceCommandLine(CLI::App& app, ServerOptions& options, int argc,
                                           const char* const* argv) {
  ConfigureCli(app);
  AddServerFlags(app, options);
  return ParseCommandLine(app, argc, argv);
}

}  // namespace prolong
