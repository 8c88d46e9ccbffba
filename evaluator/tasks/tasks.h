// HELMET's long-context tasks, LibTorch-free: from a task name, an input length, a data
// directory and the model's tokenizer to the prompts a model must answer, with the generation
// settings and the record the metrics score against.
//
//   LoadOptions load;
//   load.data_dir = data_dir;  // HELMET's data/ (and the exported datasets, load_task.h)
//   PromptOptions prompt;
//   prompt.model_max_length = 131072;
//   ASSIGN_OR_RETURN(PreparedTask task,
//                    PrepareTask("kilt_nq", 32768, load, tokenizer, prompt));
//   for (const Prompt& p : task.prompts) { generate from p.input_ids; score p.record ... }
//
// The pieces are usable alone: task_registry.h (names and settings), load_task.h (examples),
// prompt.h (prompts and truncation).
#ifndef PROLONG_EVALUATOR_TASKS_TASKS_H_
#define PROLONG_EVALUATOR_TASKS_TASKS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "evaluator/tasks/load_task.h"
#include "evaluator/tasks/prompt.h"
#include "evaluator/tasks/task_data.h"
#include "evaluator/tasks/task_registry.h"

namespace prolong::evaluator::tasks {

struct PreparedTask {
  TaskConfig config;
  PromptTemplates templates;
  LoadReport report;
  std::vector<Prompt> prompts;  // One per example, in HELMET's order.
};

// ResolveTask, LoadTask and BuildPrompt over every example; the errors are theirs, the failing
// example's index named.
absl::StatusOr<PreparedTask> PrepareTask(absl::string_view name, int64_t input_length,
                                         const LoadOptions& load_options,
                                         const tokenizer::Tokenizer& tokenizer,
                                         const PromptOptions& prompt_options);

}  // namespace prolong::evaluator::tasks

#endif  // PROLONG_EVALUATOR_TASKS_TASKS_H_
