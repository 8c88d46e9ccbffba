#ifndef PROLONG_SERVICES_PROLONGCTL_EVAL_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_EVAL_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl eval`:
//  - `rescore FILE... [--json]` recomputes HELMET's metrics of saved output files (ours or
//    HELMET's) and prints each file's dataset and averages next to the stored ones; exit code
//    0 when every file was rescored, 1 when any was not (one line on stderr per such file);
//  - `run` (eval_run.h) scores a checkpoint;
//  - `compare A B` prints two evaluations side by side. Each operand is an evaluation.json file
//    or an `eval run --out` directory; an evaluation id of the evaluator service (needs
//    --evaluator); or a run's evaluated checkpoint RUN_ID:STAGE:STEP[:raw|:after-sft] (raw by
//    default; needs --scheduler, where the run's evaluation is looked up, and --evaluator).
//    TLS and token flags as `run`'s. Exit code 1 when either cannot be read (an error naming
//    the flag, the file, or the evaluations the run has), 2 when a service cannot be reached.
void AddEvalCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_EVAL_COMMAND_H_
