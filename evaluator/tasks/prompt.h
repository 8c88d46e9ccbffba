// From a loaded example to what the model reads, as HELMET's model_utils.py prepares it:
//  - without the chat template, HELMET's prompt_template (user + separator + system) formatted
//    with the example, tokenized with BOS; the model continues the system part ("Answer:"), and
//    HELMET prepends that part to the output before scoring (output_prefix);
//  - with it, the user template as the user's turn of Llama 3's chat format, followed by the
//    assistant's header (add_generation_prompt), an optional system turn first;
//  - a prompt longer than max_length - max_new_tokens tokens loses tokens of its context (and
//    only of its context: instructions, demos and the question stay), then is formatted again.
//    HELMET cuts the context's last tokens (`context[:offsets[-truncate_length][0]]`); cutting
//    its middle instead, keeping both ends, is an option. HELMET cuts once; where re-tokenizing
//    the cut text still overflows by a token or two, we cut again, so the result always fits.
// Lengths are counted in the model's tokenizer, special-token strings in the text included, as
// a Hugging Face tokenizer counts them.
#ifndef PROLONG_EVALUATOR_TASKS_PROMPT_H_
#define PROLONG_EVALUATOR_TASKS_PROMPT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "evaluator/tasks/task_data.h"

namespace prolong::evaluator::tasks {

enum class Truncation {
  kContextEnd,     // HELMET's: the context keeps its beginning.
  kContextMiddle,  // The context keeps its beginning and its end.
};

struct PromptOptions {
  // HELMET's input_max_length: prompt plus max_new_tokens fit in it. 0: the task's length.
  int64_t max_length = 0;
  // The model's maximum length (config.json's max_position_embeddings); 0: unknown. A
  // max_length beyond it is refused unless allow_extrapolation.
  int64_t model_max_length = 0;
  bool allow_extrapolation = false;
  Truncation truncation = Truncation::kContextEnd;
  // Unset: the task's setting (HELMET's config).
  std::optional<bool> use_chat_template;
  // HELMET's --system_message, a system turn before the user's (chat template only). Unset:
  // none, HELMET's default.
  std::optional<std::string> system_message;
};

struct GenerationSettings {
  int max_new_tokens = 0;
  // HELMET's stop_newline: generation stops at "\n" (and "\n\n"). The model's EOS ids always
  // stop it too.
  std::vector<std::string> stop_strings;
};

struct Prompt {
  std::string text;                 // What the model reads; chat tokens spelled out.
  std::vector<uint32_t> input_ids;  // text's ids, beginning with BOS.
  GenerationSettings generation;
  // Prepended to the model's output before scoring (HELMET does so without the chat template:
  // the formatted system template, e.g. "Answer:").
  std::string output_prefix;
  // The example as HELMET writes it in its output's "data" list, before the generation's
  // fields: the answer(s), "qrel" for re-rank, ...; the context (and the passages or documents
  // it was made of) left out.
  Record record;
  int64_t context_tokens_removed = 0;  // Context tokens cut to fit.
  bool chat_template = false;
};

// FAILED_PRECONDITION when the chat template is on and the tokenizer lacks Llama 3's chat
// tokens, when max_length exceeds the model's, or when the prompt cannot fit even with an empty
// context; INVALID_ARGUMENT when the example lacks a template field.
absl::StatusOr<Prompt> BuildPrompt(const TaskData& task, const Record& example,
                                   const tokenizer::Tokenizer& tokenizer,
                                   const PromptOptions& options);

// Llama 3's chat format for one user turn, ready for the assistant's reply:
// <|begin_of_text|>[<|start_header_id|>system<|end_header_id|>\n\nSYSTEM<|eot_id|>]
// <|start_header_id|>user<|end_header_id|>\n\nUSER<|eot_id|>
// <|start_header_id|>assistant<|end_header_id|>\n\n, each message stripped of surrounding
// whitespace as the template's `| trim` does.
std::string RenderLlama3Chat(const std::string& user,
                             const std::optional<std::string>& system_message);

}  // namespace prolong::evaluator::tasks

#endif  // PROLONG_EVALUATOR_TASKS_PROMPT_H_
