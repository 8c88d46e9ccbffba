#include "evaluator/tasks/prompt.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "datamixer/tokenizer/chat_template.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/reference_length.h"

namespace prolong::evaluator::tasks {
namespace {

// Fields that are the context in another form (passages, sources, the document): HELMET keeps
// them in its output next to the cut context; we leave them out with it.
constexpr const char* kContextFields[] = {"context", "ctxs", "sources", "document"};

struct Rendered {
  std::string text;
  std::vector<uint32_t> ids;
};

class Renderer {
 public:
  Renderer(const TaskData& task, const tokenizer::Tokenizer& tokenizer, bool chat,
           const std::optional<std::string>& system_message)
      : task_(task), tokenizer_(tokenizer), chat_(chat), system_message_(system_message) {}

  absl::StatusOr<Rendered> Render(const Record& fields) const {
    Rendered out;
    if (chat_) {
      ASSIGN_OR_RETURN(std::string user, internal::FormatTemplate(task_.templates.user, fields));
      out.text = RenderLlama3Chat(user, system_message_);
      // The chat text carries its own <|begin_of_text|> (add_special_tokens=False in HELMET).
      out.ids = tokenizer_.EncodeWithSpecialTokens(out.text);
    } else {
      ASSIGN_OR_RETURN(out.text, internal::FormatTemplate(task_.templates.prompt, fields));
      if (tokenizer_.bos_id().has_value()) out.ids.push_back(*tokenizer_.bos_id());
      std::vector<uint32_t> ids = tokenizer_.EncodeWithSpecialTokens(out.text);
      out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    }
    return out;
  }

 private:
  const TaskData& task_;
  const tokenizer::Tokenizer& tokenizer_;
  const bool chat_;
  const std::optional<std::string>& system_message_;
};

// The context with `remove` of its `ids` taken out, at its end or in its middle.
absl::StatusOr<std::string> Cut(const tokenizer::Tokenizer& tokenizer,
                                const std::vector<uint32_t>& ids, size_t remove,
                                Truncation truncation) {
  if (remove >= ids.size()) return std::string();
  const size_t keep = ids.size() - remove;
  auto all = absl::MakeConstSpan(ids);
  if (truncation == Truncation::kContextEnd) {
    return internal::DecodePrefix(tokenizer, all.subspan(0, keep));
  }
  const size_t head = (keep + 1) / 2, tail = keep - head;
  ASSIGN_OR_RETURN(std::string start, internal::DecodePrefix(tokenizer, all.subspan(0, head)));
  ASSIGN_OR_RETURN(std::string end,
                   internal::DecodeSuffix(tokenizer, all.subspan(ids.size() - tail)));
  return absl::StrCat(start, end);
}

}  // namespace

std::string RenderLlama3Chat(const std::string& user,
                             const std::optional<std::string>& system_message) {
  std::string text = "<|begin_of_text|>";
  if (system_message.has_value()) {
    absl::StrAppend(&text, "<|start_header_id|>system<|end_header_id|>\n\n",
                    internal::PyStrip(*system_message), "<|eot_id|>");
  }
  absl::StrAppend(&text, "<|start_header_id|>user<|end_header_id|>\n\n", internal::PyStrip(user),
                  "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  return text;
}

absl::StatusOr<Prompt> BuildPrompt(const TaskData& task, const Record& example,
                                   const tokenizer::Tokenizer& tokenizer,
                                   const PromptOptions& options) {
  const TaskConfig& config = task.config;
  const int64_t max_length = options.max_length > 0 ? options.max_length : config.input_length;
  if (options.model_max_length > 0 && max_length > options.model_max_length &&
      !options.allow_extrapolation) {
    return absl::FailedPreconditionError(absl::StrCat(
        config.name, ": input length ", max_length, " exceeds the model's maximum length ",
        options.model_max_length, " (allow extrapolation to run it anyway)"));
  }
  const int64_t budget = max_length - config.generation_max_length;
  if (budget <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.name, ": input length ", max_length, " leaves no room beside ",
                     config.generation_max_length, " generated tokens"));
  }
  const bool chat = options.use_chat_template.value_or(config.use_chat_template);
  if (chat) RETURN_IF_ERROR(tokenizer::CheckChatTokens(tokenizer));

  Prompt prompt;
  prompt.chat_template = chat;
  prompt.generation.max_new_tokens = config.generation_max_length;
  if (config.stop_new_line) prompt.generation.stop_strings = {"\n", "\n\n"};
  if (!chat) {
    ASSIGN_OR_RETURN(prompt.output_prefix,
                     internal::FormatTemplate(task.templates.system, example));
  }

  Renderer renderer(task, tokenizer, chat, options.system_message);
  ASSIGN_OR_RETURN(Rendered rendered, renderer.Render(example));
  if (static_cast<int64_t>(rendered.ids.size()) > budget) {
    auto context = example.find("context");
    if (context == example.end() || !context->is_string()) {
      return absl::FailedPreconditionError(absl::StrCat(config.name, ": the prompt has ",
                                                        rendered.ids.size(), " tokens, over the ",
                                                        budget, " allowed, and no context to cut"));
    }
    const std::vector<uint32_t> context_ids =
        tokenizer.EncodeWithSpecialTokens(context->get_ref<const std::string&>());
    Record fields = example;
    size_t remove = rendered.ids.size() - static_cast<size_t>(budget);
    while (true) {
      ASSIGN_OR_RETURN(std::string cut, Cut(tokenizer, context_ids, remove, options.truncation));
      const bool emptied = cut.empty();
      fields["context"] = std::move(cut);
      ASSIGN_OR_RETURN(rendered, renderer.Render(fields));
      const int64_t over = static_cast<int64_t>(rendered.ids.size()) - budget;
      if (over <= 0) break;
      if (emptied) {
        return absl::FailedPreconditionError(
            absl::StrCat(config.name, ": even without its context the prompt has ",
                         rendered.ids.size(), " tokens, over the ", budget, " allowed (length ",
                         max_length, " minus ", config.generation_max_length, " generated)"));
      }
      remove += static_cast<size_t>(over);
    }
    prompt.context_tokens_removed = static_cast<int64_t>(std::min(remove, context_ids.size()));
  }
  prompt.text = std::move(rendered.text);
  prompt.input_ids = std::move(rendered.ids);

  prompt.record = example;
  for (const char* field : kContextFields) prompt.record.erase(field);
  return prompt;
}

}  // namespace prolong::evaluator::tasks
