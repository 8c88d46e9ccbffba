#include "datamixer/tokenizer/chat_template.h"

#include "common/status_matchers.h"
#include "datamixer/tokenizer/bpe_tokenizer.h"
#include "datamixer/tokenizer/presets.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gtest/gtest.h"

namespace prolong::tokenizer {
namespace {

using ::prolong::testing::StatusIs;

std::unique_ptr<BpeTokenizer> Llama3Bytes() {
  BpeSpec spec;
  spec.ranks = ByteRankFile();
  ApplyPreset(Preset::kLlama3, 256, spec);
  auto tokenizer = BpeTokenizer::Create(spec);
  EXPECT_OK(tokenizer);
  return *std::move(tokenizer);
}

TEST(ChatTemplateTest, LlamaThreeLayoutWithAssistantOnlyTargets) {
  auto tokenizer = Llama3Bytes();
  absl::StatusOr<ChatTokens> chat =
      EncodeChat(*tokenizer, {{"system", "S"}, {"user", "Hi"}, {"assistant", "Yo"}});
  ASSERT_OK(chat);
  const std::string text = *tokenizer->Decode(chat->tokens);
  EXPECT_EQ(text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>");
  ASSERT_EQ(chat->loss_mask.size(), chat->tokens.size());
  // Targets: 'Y', 'o' and the final <|eot_id|>, the last three tokens.
  std::string targets;
  for (size_t i = 0; i < chat->tokens.size(); ++i) {
    if (chat->loss_mask[i]) targets += *tokenizer->Decode({chat->tokens[i]});
  }
  EXPECT_EQ(targets, "Yo<|eot_id|>");
  EXPECT_EQ(chat->loss_mask.substr(chat->loss_mask.size() - 3), std::string(3, '\1'));
}

TEST(ChatTemplateTest, RejectsWhatCannotBeTrainedOn) {
  auto tokenizer = Llama3Bytes();
  EXPECT_EQ(EncodeChat(*tokenizer, {{"user", "only a question"}}).status().message(),
            "messages: no assistant message, so nothing to learn");
  EXPECT_EQ(EncodeChat(*tokenizer, {{"user", "q"}, {"bot", "a"}}).status().message(),
            "messages[1].role: 'bot' (want system, user or assistant)");
  EXPECT_THAT(EncodeChat(*tokenizer, {}), StatusIs(absl::StatusCode::kInvalidArgument));

  BpeSpec plain;
  plain.ranks = ByteRankFile();
  ApplyPreset(Preset::kCl100kBase, 256, plain);
  plain.special_tokens = {{"<|endoftext|>", 300}};
  plain.eos_token = "<|endoftext|>";
  auto cl100k = BpeTokenizer::Create(plain);
  ASSERT_OK(cl100k);
  EXPECT_THAT(EncodeChat(**cl100k, {{"user", "q"}, {"assistant", "a"}}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace prolong::tokenizer
