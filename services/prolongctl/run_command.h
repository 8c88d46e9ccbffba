#ifndef PROLONG_SERVICES_PROLONGCTL_RUN_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_RUN_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl run submit|list|get|watch|cancel|logs`: runs on the scheduler (--scheduler,
// default 127.0.0.1:7400), over TLS with --tls-ca (and --tls-cert/--tls-key where the scheduler
// asks for a client certificate), with the bearer token of --token-file (or PROLONG_TOKEN_FILE)
// that submit and cancel need when the scheduler has one. Errors are the scheduler's, one
// problem a line; exit code 1 (watch: also when the run ends other than SUCCEEDED), 2 when the
// scheduler cannot be reached. `get` and `watch` show raw and after-SFT evaluations
// (run_evaluations.h): `get` as a table with a column per category and protocol.
void AddRunCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_RUN_COMMAND_H_
