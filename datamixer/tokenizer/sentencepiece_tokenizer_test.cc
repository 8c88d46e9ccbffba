#include "datamixer/tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/chat_template.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::tokenizer {
namespace {

using ::prolong::testing::StatusIs;

// Trains one small model for the whole suite (a second or two).
class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = prolong::testing::MakeTempDir();
    const std::string corpus = dir + "/corpus.txt";
    std::ofstream out(corpus);
    const char* sentences[] = {
        "long context models read whole books and code repositories",
        "the quick brown fox jumps over the lazy dog",
        "attention is computed blockwise with an online softmax",
        "documents are packed into sequences of sixty four thousand tokens",
        "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 mixed scripts appear too"};
    for (int i = 0; i < 400; ++i) out << sentences[i % 5] << " " << i << "\n";
    out.close();
    SentencePieceTraining training;
    training.inputs = {corpus};
    training.vocab_size = kVocabSize;
    training.model_prefix = dir + "/spm";
    const absl::Status trained = TrainSentencePiece(training);
    ASSERT_OK(trained);
    model_path_ = new std::string(dir + "/spm.model");
  }

  void SetUp() override { ASSERT_NE(model_path_, nullptr) << "training failed"; }

  // Byte fallback takes 256 pieces; the rest are characters and merges.
  static constexpr int kVocabSize = 400;
  static std::string* model_path_;
};

std::string* SentencePieceTest::model_path_ = nullptr;

TEST_F(SentencePieceTest, EncodeDecodeRoundTripsAnyText) {
  absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> tokenizer =
      SentencePieceTokenizer::Load(*model_path_);
  ASSERT_OK(tokenizer);
  EXPECT_EQ((*tokenizer)->vocab_size(), static_cast<uint32_t>(kVocabSize));
  for (const char* text : {"the quick brown fox", "unseen words: zyxwvut \xE2\x82\xAC\xC3\x9F",
                           "\xE4\xB8\xAD\xE6\x96\x87 and emoji \xF0\x9F\x98\x80"}) {
    const std::vector<uint32_t> ids = (*tokenizer)->Encode(text);
    ASSERT_FALSE(ids.empty());
    for (uint32_t id : ids) EXPECT_LT(id, static_cast<uint32_t>(kVocabSize));
    absl::StatusOr<std::string> decoded = (*tokenizer)->Decode(ids);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, text);  // Byte fallback: nothing becomes unknown.
  }
  // The fingerprint is the model file's: the same on every load.
  EXPECT_EQ((*tokenizer)->fingerprint().size(), 64u);
  EXPECT_EQ((*SentencePieceTokenizer::Load(*model_path_))->fingerprint(),
            (*tokenizer)->fingerprint());
  // Frequent words cost fewer tokens than their bytes (merges were learned).
  EXPECT_LT((*tokenizer)->Encode("attention").size(), std::string("attention").size());
}

TEST_F(SentencePieceTest, ControlSymbolsOnlyWhenAsked) {
  auto tokenizer = SentencePieceTokenizer::Load(*model_path_);
  ASSERT_OK(tokenizer);
  const std::optional<uint32_t> bos = (*tokenizer)->bos_id();
  const std::optional<uint32_t> eos = (*tokenizer)->eos_id();
  ASSERT_TRUE(bos.has_value() && eos.has_value());
  EXPECT_EQ((*tokenizer)->SpecialTokenId("<s>"), bos);
  EXPECT_EQ((*tokenizer)->SpecialTokenId("</s>"), eos);
  const std::vector<uint32_t> plain = (*tokenizer)->Encode("<s>fox</s>");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), *bos), 0);
  const std::vector<uint32_t> special = (*tokenizer)->EncodeWithSpecialTokens("<s>fox</s>");
  ASSERT_GE(special.size(), 3u);
  EXPECT_EQ(special.front(), *bos);
  EXPECT_EQ(special.back(), *eos);
}

TEST_F(SentencePieceTest, SpecialTokensMakeAModelForTheChatFormat) {
  const std::string dir = prolong::testing::MakeTempDir();
  std::ofstream(dir + "/corpus.txt") << "user asks\nassistant answers\nthe eot id is a token\n";
  SentencePieceTraining training;
  training.inputs = {dir + "/corpus.txt"};
  training.vocab_size = 300;
  training.model_prefix = dir + "/chat";
  training.special_tokens.assign(std::begin(kChatTokens), std::end(kChatTokens));
  ASSERT_OK(TrainSentencePiece(training));
  auto tokenizer = SentencePieceTokenizer::Load(dir + "/chat.model");
  ASSERT_OK(tokenizer);
  ASSERT_OK(CheckChatTokens(**tokenizer));
  const std::optional<uint32_t> eot = (*tokenizer)->SpecialTokenId("<|eot_id|>");
  ASSERT_TRUE(eot.has_value());
  // Plain text never becomes the token; text written with special tokens does.
  const std::vector<uint32_t> plain = (*tokenizer)->Encode("hi<|eot_id|>");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), *eot), 0);
  EXPECT_EQ((*tokenizer)->EncodeWithSpecialTokens("hi<|eot_id|>").back(), *eot);
  auto chat = EncodeChat(**tokenizer, {{"user", "hi"}, {"assistant", "hello"}});
  ASSERT_OK(chat);
  EXPECT_EQ(chat->tokens.back(), *eot);
  EXPECT_EQ(chat->loss_mask.back(), 1);

  training.special_tokens = {"a,b"};
  EXPECT_THAT(TrainSentencePiece(training), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(SentencePieceTest, ErrorsNameTheProblem) {
  EXPECT_THAT(SentencePieceTokenizer::Load("/no/such/file.model"),
              StatusIs(absl::StatusCode::kNotFound));
  const std::string bogus = prolong::testing::MakeTempDir() + "/bogus.model";
  std::ofstream(bogus) << "not a model";
  EXPECT_THAT(SentencePieceTokenizer::Load(bogus), StatusIs(absl::StatusCode::kInvalidArgument));
  // A unigram model whose second piece is one NUL byte: libsentencepiece throws on it.
  const std::string nul_piece = prolong::testing::MakeTempDir() + "/nul_piece.model";
  std::ofstream(nul_piece, std::ios::binary) << std::string(
      "\x0a\x0e\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02"
      "\x0a\x0a\x0a\x01\x00\x15\x00\x00\x80\xbf\x18\x01",
      28);
  EXPECT_THAT(SentencePieceTokenizer::Load(nul_piece),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto tokenizer = SentencePieceTokenizer::Load(*model_path_);
  ASSERT_OK(tokenizer);
  EXPECT_EQ((*tokenizer)->Decode({1, 100000}).status().message(),
            "ids[1] = 100000 is not in the vocabulary");

  SentencePieceTraining training;
  training.vocab_size = 300;
  training.model_prefix = "/tmp/x";
  EXPECT_EQ(TrainSentencePiece(training).message(), "inputs: none given");
  training.inputs = {"a,b.txt"};
  EXPECT_THAT(TrainSentencePiece(training), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace prolong::tokenizer
