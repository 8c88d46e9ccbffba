// Conversations as training sequences in Llama 3's chat format, with a loss mask that makes only
// the assistant's replies targets (supervised fine-tuning on responses, as ProLong's SFT does):
//
//   <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>
//   <|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>
//
// Mask 1 on each assistant reply's tokens and its closing <|eot_id|> (so the model learns to
// stop), 0 elsewhere.
#ifndef PROLONG_DATAMIXER_TOKENIZER_CHAT_TEMPLATE_H_
#define PROLONG_DATAMIXER_TOKENIZER_CHAT_TEMPLATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::tokenizer {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant".
  std::string content;
};

struct ChatTokens {
  std::vector<uint32_t> tokens;
  std::string loss_mask;  // One byte (0 or 1) per token.
};

// Llama 3's chat tokens, as the format above uses them.
inline constexpr const char* kChatTokens[] = {"<|begin_of_text|>", "<|start_header_id|>",
                                              "<|end_header_id|>", "<|eot_id|>"};

// FAILED_PRECONDITION naming the first of Llama 3's chat tokens the tokenizer lacks.
absl::Status CheckChatTokens(const Tokenizer& tokenizer);

// FAILED_PRECONDITION as CheckChatTokens; INVALID_ARGUMENT for an
// unknown role, no assistant message, or an empty conversation (naming the message index).
absl::StatusOr<ChatTokens> EncodeChat(const Tokenizer& tokenizer,
                                      absl::Span<const ChatMessage> messages);

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_CHAT_TEMPLATE_H_
