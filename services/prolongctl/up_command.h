#ifndef PROLONG_SERVICES_PROLONGCTL_UP_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_UP_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl up [--home DIR]`: the embedded stack on this machine (datamixer, evaluator,
// scheduler), their state under DIR, until Ctrl-C or SIGTERM stops them all. Exit code 0 after
// a clean stop; 1 when a service cannot start or dies.
void AddUpCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_UP_COMMAND_H_
