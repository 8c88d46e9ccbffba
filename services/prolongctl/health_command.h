#ifndef PROLONG_SERVICES_PROLONGCTL_HEALTH_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_HEALTH_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl health ADDRESS`: asks a service's grpc.health.v1 endpoint whether it serves
// (over TLS with --tls-ca; see run_command.h).
// Exit code (into *exit_code): 0 SERVING, 1 NOT_SERVING or unknown service, 2 unreachable.
void AddHealthCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_HEALTH_COMMAND_H_
