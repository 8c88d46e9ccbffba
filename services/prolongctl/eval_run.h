// `prolongctl eval run`: scores a checkpoint on HELMET's tasks in this process (the evaluator's
// runner), with a progress line on stderr and a table by category and length on stdout, and
// optionally gates on a baseline evaluation. `prolongctl eval position-loss`: the loss by
// position diagnostic.
#ifndef PROLONG_SERVICES_PROLONGCTL_EVAL_RUN_H_
#define PROLONG_SERVICES_PROLONGCTL_EVAL_RUN_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// Adds `run` under the `eval` subcommand. Exit code (into *exit_code): 0 scored (and no
// regression), 1 an error (one line on stderr), 3 a category fell below the baseline by more
// than --max-drop (each named on stderr).
void AddEvalRunCommand(CLI::App& eval, int* exit_code);

// Adds `position-loss` under `eval`: a checkpoint's mean next-token loss by position bucket over
// documents of a datamixer store's domain (a diagnostic, never a ranking score). Exit code 0, or
// 1 with one line on stderr.
void AddEvalPositionLossCommand(CLI::App& eval, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_EVAL_RUN_H_
