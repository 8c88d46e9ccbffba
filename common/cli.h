// Command-line conventions shared by every prolong binary (CLI11): unknown flags and bad
// values print the message and the full usage and exit non-zero; server flags have the same
// names in every service.
#ifndef PROLONG_COMMON_CLI_H_
#define PROLONG_COMMON_CLI_H_

#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "common/security.h"
#include "common/server.h"

namespace prolong {

// Applies the conventions to `app` and its future subcommands.
void ConfigureCli(CLI::App& app);

// --address, --metrics-address, --shutdown-grace-seconds; their defaults are `options`' values.
// --tls-cert, --tls-key, --tls-client-ca into options.tls.
void AddServerFlags(CLI::App& app, ServerOptions& options);

// --auth-token-file: the file is read as the command line is parsed, and the token (its
// contents, whitespace trimmed) set into `token`; an empty or unreadable file is a flag error.
void AddAuthTokenFlag(CLI::App& app, std::string& token);

// A client's --<prefix>tls-ca, --<prefix>tls-cert, --<prefix>tls-key and, `with_token`,
// --<prefix>token-file into `files` (read them with LoadClientSecurity(files, "--" + prefix)).
// `from_environment`: each flag absent from the command line defaults to the environment
// variable PROLONG_<NAME> (--tls-ca: PROLONG_TLS_CA, --token-file: PROLONG_TOKEN_FILE).
void AddClientSecurityFlags(CLI::App& app, ClientSecurityFiles& files, const std::string& prefix,
                            bool with_token, bool from_environment,
                            const std::string& group = "Options");

// Parses argv into `app`. Returns the exit code when the process should stop now: 0 after
// --help, non-zero (with the message and usage on stderr) for bad flags; nullopt otherwise.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv);

// For service binaries: configures `app`, adds the server flags and parses.
std::optional<int> ParseServiceCommandLine(CLI::App& app, ServerOptions& options, int argc,
                                           const char* const* argv);

}  // namespace prolong

#endif  // PROLONG_COMMON_CLI_H_
