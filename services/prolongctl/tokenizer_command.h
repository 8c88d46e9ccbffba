#ifndef PROLONG_SERVICES_PROLONGCTL_TOKENIZER_COMMAND_H_
#define PROLONG_SERVICES_PROLONGCTL_TOKENIZER_COMMAND_H_

#include "CLI/CLI.hpp"

namespace prolong::ctl {

// `prolongctl tokenizer encode|decode|train`. Exit code (into *exit_code): 0 on success, 1 for
// bad input (the message on stderr names it).
void AddTokenizerCommand(CLI::App& app, int* exit_code);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_TOKENIZER_COMMAND_H_
