// prolongctl: the operator's command line for prolong.

#include <iostream>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/version.h"
#include "services/prolongctl/data_command.h"
#include "services/prolongctl/eval_command.h"
#include "services/prolongctl/health_command.h"
#include "services/prolongctl/run_command.h"
#include "services/prolongctl/tokenizer_command.h"
#include "services/prolongctl/train_command.h"
#include "services/prolongctl/up_command.h"

int main(int argc, char** argv) {
  CLI::App app("prolongctl: operate prolong, long-context training at cluster scale.");
  prolong::ConfigureCli(app);
  app.require_subcommand(1);
  int exit_code = 0;
  prolong::ctl::AddHealthCommand(app, &exit_code);
  prolong::ctl::AddDataCommand(app, &exit_code);
  prolong::ctl::AddTokenizerCommand(app, &exit_code);
  prolong::ctl::AddTrainCommand(app, &exit_code);
  prolong::ctl::AddRunCommand(app, &exit_code);
  prolong::ctl::AddUpCommand(app, &exit_code);
  prolong::ctl::AddEvalCommand(app, &exit_code);
  app.add_subcommand("version", "Print prolongctl's version.")->callback([] {
    std::cout << "prolongctl " << prolong::kVersion << std::endl;
  });
  if (auto early_exit = prolong::ParseCommandLine(app, argc, argv)) return *early_exit;
  return exit_code;
}
