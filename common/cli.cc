#include "common/cli.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
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
  app.add_option("--tls-cert", options.tls.cert,
                 "PEM certificate chain: serve gRPC over TLS only (with --tls-key)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", options.tls.key, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", options.tls.client_ca,
                 "PEM CA certificate: accept only clients presenting a certificate it signed "
                 "(mutual TLS)")
      ->check(CLI::ExistingFile);
}

void AddAuthTokenFlag(CLI::App& app, std::string& token) {
  app.add_option_function<std::string>(
      "--auth-token-file",
      [&token](const std::string& path) {
        absl::StatusOr<std::string> read = ReadTokenFile(path);
        if (!read.ok()) {
          throw CLI::ValidationError("--auth-token-file", std::string(read.status().message()));
        }
        token = *std::move(read);
      },
      "File holding the bearer token that calls changing state must carry (authorization: "
      "Bearer <token>); reads need none");
}

void AddClientSecurityFlags(CLI::App& app, ClientSecurityFiles& files, const std::string& prefix,
                            bool with_token, bool from_environment, const std::string& group) {
  auto add = [&](const std::string& name, std::string& path, const std::string& help) {
    CLI::Option* option =
        app.add_option("--" + prefix + name, path, help)->group(group)->check(CLI::ExistingFile);
    if (from_environment) {
      std::string variable = "PROLONG_" + absl::AsciiStrToUpper(prefix + name);
      std::replace(variable.begin(), variable.end(), '-', '_');
      option->envname(variable);
    }
  };
  add("tls-ca", files.tls_ca,
      "PEM CA certificate that signed the servers' certificates: call them over TLS");
  add("tls-cert", files.tls_cert,
      "PEM client certificate chain, for servers that require one (mutual TLS)");
  add("tls-key", files.tls_key, "PEM private key of the client certificate");
  if (with_token) {
    add("token-file", files.token_file,
        "File holding the bearer token sent with every call (calls that change state need it "
        "when the server has one)");
  }
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
