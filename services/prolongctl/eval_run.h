// `prolongctl eval run`: scores a checkpoint on HELMET's tasks in this process (the evaluator's
// runner), with a progress line on stderr and a table by category and length on stdout, and
// optionally gates on a baseline evaluation.
#ifndef PROLONG_SERVICES_PROLONGCTL_EVAL_RUN_H_
#define PROLONG_SERVICES_PROLONGCTL_EVAL_RUN_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// Adds `run` under the `eval` subcommand. Exit code (into *exit_code): 0 scored (and no
// regression), 1 an error (one line on stderr), 3 a category fell below the baseline by more
// than --max-drop (each named on stderr).
void AddEvalRunCommand(CLI::App& eval, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_EVAL_RUN_H_
