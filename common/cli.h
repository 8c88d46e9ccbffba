// Command-line conventions shared by every prolong binary (CLI11): unknown flags and bad
// values print the full usage and exit non-zero (parse with CLI11_PARSE from main); server
// flags have the same names in every service.
#ifndef PROLONG_COMMON_CLI_H_
#define PROLONG_COMMON_CLI_H_

#include "CLI/CLI.hpp"
#include "common/server.h"

namespace prolong {

// Applies the conventions to `app` and its future subcommands.
void ConfigureCli(CLI::App& app);

// --address, --metrics-address, --shutdown-grace-seconds; their defaults are `options`' values.
void AddServerFlags(CLI::App& app, ServerOptions& options);

}  // namespace prolong

#endif  // PROLONG_COMMON_CLI_H_
