#include "datamixer/tokenizer/chat_template.h"

#include "absl/strings/str_cat.h"

namespace prolong::tokenizer {
namespace {

struct ChatIds {
  uint32_t begin_of_text, start_header, end_header, end_of_turn;
};

absl::StatusOr<ChatIds> FindChatIds(const Tokenizer& tokenizer) {
  uint32_t ids[4];
  for (int i = 0; i < 4; ++i) {
    std::optional<uint32_t> id = tokenizer.SpecialTokenId(kChatTokens[i]);
    if (!id.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the chat format needs Llama 3's chat tokens; this tokenizer has no ", kChatTokens[i]));
    }
    ids[i] = *id;
  }
  return ChatIds{ids[0], ids[1], ids[2], ids[3]};
}

}  // namespace

absl::Status CheckChatTokens(const Tokenizer& tokenizer) { return FindChatIds(tokenizer).status(); }

absl::StatusOr<ChatTokens> EncodeChat(const Tokenizer& tokenizer,
                                      absl::Span<const ChatMessage> messages) {
  absl::StatusOr<ChatIds> ids = FindChatIds(tokenizer);
  if (!ids.ok()) return ids.status();
  if (messages.empty()) return absl::InvalidArgumentError("messages: empty conversation");
  ChatTokens chat;
  auto append = [&chat](absl::Span<const uint32_t> tokens, bool target) {
    chat.tokens.insert(chat.tokens.end(), tokens.begin(), tokens.end());
    chat.loss_mask.append(tokens.size(), target ? '\1' : '\0');
  };
  bool any_assistant = false;
  append({ids->begin_of_text}, false);
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    if (message.role != "system" && message.role != "user" && message.role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role: '", message.role,
                                                     "' (want system, user or assistant)"));
    }
    const bool target = message.role == "assistant";
    any_assistant |= target;
    append({ids->start_header}, false);
    append(tokenizer.Encode(message.role), false);
    append({ids->end_header}, false);
    append(tokenizer.Encode("\n\n"), false);
    append(tokenizer.Encode(message.content), target);
    append({ids->end_of_turn}, target);
  }
  if (!any_assistant) {
    return absl::InvalidArgumentError("messages: no assistant message, so nothing to learn");
  }
  return chat;
}

}  // namespace prolong::tokenizer
