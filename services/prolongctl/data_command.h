#ifndef PROLONG_SERVICES_PROLONGCTL_DATA_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_DATA_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl data ingest|stats`. Exit code (into *exit_code): 0 on success (skipped bad
// documents are reported, not fatal), 1 when the command cannot do its work.
void AddDataCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_DATA_COMMAND_H_
