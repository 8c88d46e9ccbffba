#include "datamixer/tokenizer/load.h"

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::tokenizer {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = prolong::testing::MakeTempDir();
    Write("tiny.tiktoken", ByteRankFile({"ab"}));
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  std::string dir_;
};

TEST_F(LoadTest, BareRankFileWithPresets) {
  auto llama = LoadTokenizer(dir_ + "/tiny.tiktoken", "llama3");
  ASSERT_OK(llama);
  // Llama 3 numbers its 256 special tokens after the ranks (257 here).
  EXPECT_EQ((*llama)->SpecialTokenId("<|begin_of_text|>"), 257u);
  EXPECT_EQ((*llama)->SpecialTokenId("<|eot_id|>"), 266u);
  EXPECT_EQ((*llama)->bos_id(), 257u);
  EXPECT_EQ((*llama)->eos_id(), 258u);
  EXPECT_EQ((*llama)->vocab_size(), 257u + 256u);
  EXPECT_EQ((*llama)->Encode("ab"), (std::vector<uint32_t>{256}));

  auto cl100k = LoadTokenizer(dir_ + "/tiny.tiktoken", "cl100k_base");
  ASSERT_OK(cl100k);
  EXPECT_EQ((*cl100k)->eos_id(), 100257u);
}

// Llama 3's special ids follow the ranks, however the file ends its lines: blank lines, CRLF
// ones included, are not ranks.
TEST_F(LoadTest, SpecialIdsFollowTheRanksWhateverTheLineEnds) {
  std::string crlf;
  for (const char c : ByteRankFile({"ab"}))
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  Write("crlf.tiktoken", crlf + "\r\n\r\n");
  auto llama = LoadTokenizer(dir_ + "/crlf.tiktoken", "llama3");
  ASSERT_OK(llama);
  EXPECT_EQ((*llama)->SpecialTokenId("<|begin_of_text|>"), 257u);
  EXPECT_EQ((*llama)->vocab_size(), 257u + 256u);
}

TEST_F(LoadTest, DescriptionFilesInJsonAndYaml) {
  Write("tok.json", R"({"type": "tiktoken", "ranks": "tiny.tiktoken", "preset": "llama3",
                        "special_tokens": {"<|x|>": 300, "<|y|>": 301}, "eos_token": "<|y|>"})");
  auto json = LoadTokenizer(dir_ + "/tok.json");
  ASSERT_OK(json);
  EXPECT_EQ((*json)->SpecialTokenId("<|x|>"), 300u);
  EXPECT_EQ((*json)->SpecialTokenId("<|begin_of_text|>"), std::nullopt);  // Overridden.
  EXPECT_EQ((*json)->eos_id(), 301u);

  Write("tok.yaml",
        "type: tiktoken\nranks: tiny.tiktoken\npattern: '\\w+|\\s+|.'\n"
        "special_tokens:\n  <|end|>: 400\neos_token: <|end|>\n");
  auto yaml = LoadTokenizer(dir_ + "/tok.yaml");
  ASSERT_OK(yaml);
  EXPECT_EQ((*yaml)->eos_id(), 400u);
  EXPECT_EQ((*yaml)->EncodeWithSpecialTokens("ab<|end|>"), (std::vector<uint32_t>{256, 400}));
}

TEST_F(LoadTest, ErrorsNameTheFileAndField) {
  auto missing = LoadTokenizer(dir_ + "/nope.tiktoken", "llama3");
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.tiktoken")));

  auto bare = LoadTokenizer(dir_ + "/tiny.tiktoken");
  EXPECT_THAT(bare, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs a preset")));

  EXPECT_EQ(LoadTokenizer(dir_ + "/tiny.tiktoken", "gpt9").status().message(),
            "preset: unknown 'gpt9' (known: llama3, cl100k_base)");

  Write("badtype.json", R"({"type": "wordpiece"})");
  EXPECT_TRUE(absl::StrContains(LoadTokenizer(dir_ + "/badtype.json").status().message(),
                                "type: want tiktoken or sentencepiece"));
  Write("noranks.yaml", "type: tiktoken\n");
  EXPECT_TRUE(absl::StrContains(LoadTokenizer(dir_ + "/noranks.yaml").status().message(),
                                "ranks: missing"));
  Write("badid.yaml",
        "type: tiktoken\nranks: tiny.tiktoken\npreset: llama3\n"
        "special_tokens: {a: notanumber}\n");
  EXPECT_TRUE(absl::StrContains(LoadTokenizer(dir_ + "/badid.yaml").status().message(),
                                "special_tokens: 'a' needs an integer id"));
  // A key that is no string is refused as such: naming it in the error would throw again.
  for (const char* key : {"[a, b]", "{a: b}", "~"}) {
    Write("badkey.yaml", absl::StrCat("type: tiktoken\nranks: tiny.tiktoken\npreset: llama3\n"
                                      "special_tokens:\n  ? ",
                                      key, "\n  : 300\n"));
    EXPECT_THAT(LoadTokenizer(dir_ + "/badkey.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("badkey.yaml: special_tokens: every token must be a string")))
        << key;
  }
  Write("badpreset.json", R"({"type": "tiktoken", "ranks": "tiny.tiktoken", "preset": "gpt9"})");
  EXPECT_THAT(LoadTokenizer(dir_ + "/badpreset.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("badpreset.json: preset: unknown 'gpt9'")));
  Write("broken.json", "{\"type\": ");
  EXPECT_THAT(LoadTokenizer(dir_ + "/broken.json"), StatusIs(absl::StatusCode::kInvalidArgument));
  Write("badline.tiktoken", "YWI= x\n");
  auto badline = LoadTokenizer(dir_ + "/badline.tiktoken", "llama3");
  EXPECT_TRUE(absl::StrContains(badline.status().message(), "badline.tiktoken: rank file line 1"))
      << badline.status();
}

}  // namespace
}  // namespace prolong::tokenizer
