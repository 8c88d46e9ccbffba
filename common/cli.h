// Command-line conventions shared by every prolong binary (CLI11): unknown flags and bad
// values print the message and the full usage and exit non-zero; server flags have the same
// names in every service.
#ifndef PROLONG_COMMON_CLI_H_
#define PROLONG_COMMON_CLI_H_

#include <optional>

#include "CLI/CLI.hpp"
#include "common/server.h"

namespace prolong {

// Applies the conventions to `app` and its future subcommands.
void ConfigureCli(CLI::App& app);

// --address, --metrics-address, --shutdown-grace-seconds; their defaults are `options`' values.
void AddServerFlags(CLI::App& app, ServerOptions& options);

// Parses argv into `app`. Returns the exit code when the process should stop now: 0 after
// --help, non-zero (with the message and usage on stderr) for bad flags; nullopt otherwise.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv);

// For service binaries: configures `app`, adds the server flags and parses.
std::optional<int> ParseServiceCommandLine(CLI::App& app, ServerOptions& options, int argc,
                                           const char* const* argv);

}  // namespace prolong

#endif  // PROLONG_COMMON_CLI_H_
