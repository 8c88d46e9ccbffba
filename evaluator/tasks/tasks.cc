#include "evaluator/tasks/tasks.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace prolong::evaluator::tasks {

absl::StatusOr<PreparedTask> PrepareTask(absl::string_view name, int64_t input_length,
                                         const LoadOptions& load_options,
                                         const tokenizer::Tokenizer& tokenizer,
                                         const PromptOptions& prompt_options) {
  ASSIGN_OR_RETURN(TaskConfig config, ResolveTask(name, input_length));
  ASSIGN_OR_RETURN(TaskData data, LoadTask(config, load_options, tokenizer));
  PreparedTask prepared;
  prepared.prompts.reserve(data.examples.size());
  for (size_t i = 0; i < data.examples.size(); ++i) {
    absl::StatusOr<Prompt> prompt = BuildPrompt(data, data.examples[i], tokenizer, prompt_options);
    if (!prompt.ok()) return Annotate(prompt.status(), absl::StrCat("example ", i));
    prepared.prompts.push_back(*std::move(prompt));
  }
  prepared.config = std::move(data.config);
  prepared.templates = std::move(data.templates);
  prepared.report = std::move(data.report);
  return prepared;
}

}  // namespace prolong::evaluator::tasks
