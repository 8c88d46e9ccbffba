#include "datamixer/tokenizer/bpe_tokenizer.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/presets.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::tokenizer {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::StartsWith;

std::unique_ptr<BpeTokenizer> Make(const std::vector<std::string>& merges) {
  BpeSpec spec;
  spec.ranks = ByteRankFile(merges);
  spec.pattern = kCl100kPattern;
  spec.special_tokens = {{"<|endoftext|>", 1000}, {"<|end|>", 1001}};
  spec.eos_token = "<|endoftext|>";
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer = BpeTokenizer::Create(spec);
  EXPECT_OK(tokenizer);
  return tokenizer.ok() ? *std::move(tokenizer) : nullptr;
}

TEST(BpeTokenizerTest, SplitsWithThePatternThenMerges) {
  // Ranks 256.. in order: "he", "ll", "hell", "hello", " w", "or", " wor", " world".
  auto tokenizer = Make({"he", "ll", "hell", "hello", " w", "or", " wor", " world"});
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("hello world"), (std::vector<uint32_t>{259, 263}));
  // "hello" then " wor" + "ld" by merges, "!" a piece of its own.
  EXPECT_EQ(tokenizer->Encode("hello world!"), (std::vector<uint32_t>{259, 263, '!'}));
  EXPECT_EQ(tokenizer->Encode("helo"), (std::vector<uint32_t>{256, 'l', 'o'}));
  EXPECT_EQ(tokenizer->vocab_size(), 1002u);
  EXPECT_EQ(tokenizer->num_ranks(), 264u);
  EXPECT_EQ(tokenizer->eos_id(), 1000u);
  EXPECT_EQ(tokenizer->bos_id(), std::nullopt);
}

TEST(BpeTokenizerTest, DecodeInvertsEncodeOnValidText) {
  auto tokenizer = Make({"he", "ll", "  ", "    ", "\n\n"});
  ASSERT_NE(tokenizer, nullptr);
  for (const char* text : {"", "hello", "  indented\n\n\tcode();", "caf\xC3\xA9 \xE4\xB8\xAD",
                           "\xF0\x9F\x98\x80\xF0\x9F\x98\x80", "12345 678", "it's ISN'T"}) {
    absl::StatusOr<std::string> decoded = tokenizer->Decode(tokenizer->Encode(text));
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, text);
  }
}

TEST(BpeTokenizerTest, InvalidUtf8IsReadAsReplacementCharacters) {
  auto tokenizer = Make({});
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("a\xFF"
                              "b"),
            tokenizer->Encode("a\xEF\xBF\xBD"
                              "b"));
}

TEST(BpeTokenizerTest, SpecialTokensOnlyWhenAsked) {
  auto tokenizer = Make({});
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "a<|endoftext|>b<|end|>";
  const std::vector<uint32_t> plain = tokenizer->Encode(text);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1000u), 0);
  EXPECT_EQ(*tokenizer->Decode(plain), text);
  EXPECT_EQ(tokenizer->EncodeWithSpecialTokens(text),
            (std::vector<uint32_t>{'a', 1000, 'b', 1001}));
  EXPECT_EQ(tokenizer->SpecialTokenId("<|end|>"), 1001u);
  EXPECT_EQ(tokenizer->SpecialTokenId("<|nope|>"), std::nullopt);
}

TEST(BpeTokenizerTest, DecodeNamesAnUnknownId) {
  auto tokenizer = Make({});
  ASSERT_NE(tokenizer, nullptr);
  absl::StatusOr<std::string> decoded = tokenizer->Decode({'a', 999, 'b'});
  EXPECT_THAT(decoded, StatusIs(absl::StatusCode::kInvalidArgument,
                                "ids[1] = 999 is not in the vocabulary"));
  EXPECT_FALSE(tokenizer->Decode({5000}).ok());
}

TEST(BpeTokenizerTest, BadSpecsAreRejectedWithTheReason) {
  BpeSpec spec;
  spec.pattern = kCl100kPattern;
  spec.ranks = ByteRankFile({}) + "not-base64!! 300\n";
  EXPECT_EQ(BpeTokenizer::Create(spec).status().message().substr(0, 20), "rank file line 257: ");

  spec.ranks = ByteRankFile({}).substr(ByteRankFile({}).find('\n') + 1);  // Byte 0 missing.
  EXPECT_EQ(BpeTokenizer::Create(spec).status().message(),
            "rank file has no token for the single byte 0");

  spec.ranks = ByteRankFile({});
  spec.pattern = "(unclosed";
  EXPECT_THAT(BpeTokenizer::Create(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("pattern: at offset")));

  // Its own match limit would fail a match mid-document, where Encode cannot say so.
  spec.pattern = "(*LIMIT_MATCH=1)(?:\\w+)+!|\\s+|.";
  EXPECT_THAT(BpeTokenizer::Create(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       StartsWith("pattern: sets its own (*LIMIT_...) match limit")));

  spec.pattern = kCl100kPattern;
  spec.special_tokens = {{"<|x|>", 65}};  // The id of "A".
  EXPECT_FALSE(BpeTokenizer::Create(spec).ok());

  spec.special_tokens = {{"<|x|>", 300}};
  spec.bos_token = "<|bos|>";
  EXPECT_EQ(BpeTokenizer::Create(spec).status().message(),
            "bos/eos token '<|bos|>' is not a special token");
  spec.bos_token.clear();

  // Ids that would size the id -> bytes table at gigabytes.
  spec.special_tokens = {{"<|x|>", 4294967295u}};
  EXPECT_EQ(BpeTokenizer::Create(spec).status().message(),
            "special token '<|x|>': id 4294967295 is not below 2097152");
  spec.special_tokens.clear();
  spec.ranks = ByteRankFile({}) + "eHl6 2097152\n";
  EXPECT_EQ(BpeTokenizer::Create(spec).status().message(),
            "rank file line 257: rank 2097152 is not below 2097152");
  spec.ranks = ByteRankFile({}) + "eHl6 2097151\n";
  EXPECT_OK(BpeTokenizer::Create(spec));
}

TEST(BpeTokenizerTest, SpecialTokensMayContainPatternSyntax) {
  BpeSpec spec;
  spec.ranks = ByteRankFile({});
  spec.pattern = kCl100kPattern;
  // \E would end the \Q quote around each token early, and "|" after it match the empty string.
  spec.special_tokens = {{"a\\E|", 300}, {"\\E", 301}, {"(.*)\\", 302}};
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer = BpeTokenizer::Create(spec);
  ASSERT_OK(tokenizer);
  const std::string text = "xa\\E|y\\E(.*)\\z";
  EXPECT_EQ((*tokenizer)->EncodeWithSpecialTokens(text),
            (std::vector<uint32_t>{'x', 300, 'y', 301, 302, 'z'}));
  EXPECT_EQ((*tokenizer)->EncodeWithSpecialTokens("plain"), (*tokenizer)->Encode("plain"));
}

TEST(BpeTokenizerTest, FingerprintChangesWithAnythingThatChangesIds) {
  auto base = Make({"he"});
  auto same = Make({"he"});
  auto other_merges = Make({"ll"});
  ASSERT_TRUE(base && same && other_merges);
  EXPECT_EQ(base->fingerprint().size(), 64u);
  EXPECT_EQ(base->fingerprint(), same->fingerprint());
  EXPECT_NE(base->fingerprint(), other_merges->fingerprint());
  BpeSpec spec;
  spec.ranks = ByteRankFile({"he"});
  spec.pattern = "\\S+|\\s+";
  auto other_pattern = BpeTokenizer::Create(spec);
  ASSERT_OK(other_pattern);
  EXPECT_NE((*other_pattern)->fingerprint(), base->fingerprint());
}

TEST(BpeTokenizerTest, LongWhitespaceAndLettersDoNotBlowUp) {
  auto tokenizer = Make({"  ", "    ", "aa", "aaaa"});
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = std::string(1 << 20, ' ') + "x" + std::string(1 << 20, 'a');
  const std::vector<uint32_t> ids = tokenizer->Encode(text);
  EXPECT_EQ(*tokenizer->Decode(ids), text);
}

}  // namespace
}  // namespace prolong::tokenizer
