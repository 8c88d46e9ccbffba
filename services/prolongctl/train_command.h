#ifndef PROLONG_SERVICES_PROLONGCTL_TRAIN_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_TRAIN_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl train --local --nproc K [--cp C] JOB FLAGS`: runs one stage's training gang as K
// trainer worker processes on this machine (dp = K / C; the job flag --cp-scheme picks the
// context-parallel attention scheme). Starts rank 0, which hosts the gang's TCP store (so that
// prolongctl itself does not load LibTorch), then the other ranks at the address rank 0's
// ready line gives; forwards the job flags to each, prefixes their output lines
// with "[rank N]" and waits. If a worker fails, the others are killed and the command exits 1
// naming the rank and how it ended; SIGINT or SIGTERM is passed on to the workers (which stop
// after a step, with a checkpoint), a second one kills them, and the exit code is then 128 +
// the signal. Exit code (into *exit_code): 0 when every rank finished the plan.
void AddTrainCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_TRAIN_COMMAND_H_
