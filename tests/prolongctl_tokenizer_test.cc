// `prolongctl tokenizer` as an operator runs it: text in on stdin, ids out, and back.

#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";

class ProlongctlTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ranks_ = Write("tiny.tiktoken", tokenizer::ByteRankFile({"ab"}));
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  testing::RunResult Run(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), kProlongctl);
    absl::StatusOr<testing::RunResult> result =
        testing::Run(args, absl::Seconds(60), Write("stdin", stdin_text));
    EXPECT_OK(result);
    return result.ok() ? *result : testing::RunResult{};
  }

  std::string dir_;
  std::string ranks_;
};

TEST_F(ProlongctlTokenizerTest, EncodesAndDecodesWithARankFileAndPreset) {
  testing::RunResult encoded =
      Run({"tokenizer", "encode", "--tokenizer", ranks_, "--preset", "llama3"}, "ab<|eot_id|>");
  EXPECT_EQ(encoded.exit_code, 0) << encoded.stderr_text;
  // Special-token strings are text unless --special is given.
  EXPECT_EQ(encoded.stdout_text, "[256,60,124,101,111,116,95,105,100,124,62]\n");

  encoded = Run({"tokenizer", "encode", "--tokenizer", ranks_, "--preset", "llama3", "--special"},
                "ab<|eot_id|>");
  EXPECT_EQ(encoded.stdout_text, "[256,266]\n");

  testing::RunResult decoded =
      Run({"tokenizer", "decode", "--tokenizer", ranks_, "--preset", "llama3"}, "[256, 266, 99]");
  EXPECT_EQ(decoded.exit_code, 0) << decoded.stderr_text;
  EXPECT_EQ(decoded.stdout_text, "ab<|eot_id|>c");
}

TEST_F(ProlongctlTokenizerTest, TrainsASentencePieceModelThatRoundTrips) {
  std::string corpus;
  for (int i = 0; i < 300; ++i) {
    absl::StrAppend(&corpus, "packed sequences of long documents number ", i, "\n");
  }
  const std::string input = Write("corpus.txt", corpus);
  testing::RunResult trained =
      Run({"tokenizer", "train", "--input", input, "--vocab-size", "400", "--out", dir_ + "/spm"});
  ASSERT_EQ(trained.exit_code, 0) << trained.stderr_text;
  EXPECT_TRUE(absl::StrContains(trained.stdout_text, "spm.model"));

  const std::string text = "long documents, packed \xE2\x9C\x93";
  testing::RunResult encoded =
      Run({"tokenizer", "encode", "--tokenizer", dir_ + "/spm.model"}, text);
  ASSERT_EQ(encoded.exit_code, 0) << encoded.stderr_text;
  testing::RunResult decoded =
      Run({"tokenizer", "decode", "--tokenizer", dir_ + "/spm.model"}, encoded.stdout_text);
  ASSERT_EQ(decoded.exit_code, 0) << decoded.stderr_text;
  EXPECT_EQ(decoded.stdout_text, text);
}

TEST_F(ProlongctlTokenizerTest, BadInputIsNamedAndFails) {
  testing::RunResult result =
      Run({"tokenizer", "decode", "--tokenizer", ranks_, "--preset", "llama3"}, "[1, 99999]");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "ids[1] = 99999 is not in the vocabulary"))
      << result.stderr_text;

  result = Run({"tokenizer", "decode", "--tokenizer", ranks_, "--preset", "llama3"}, "1 two");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "item 1 ('two') is not an id"));

  result = Run({"tokenizer", "encode", "--tokenizer", ranks_}, "x");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "needs a preset"));

  result = Run({"tokenizer", "encode", "--tokenizer", dir_ + "/missing.json"}, "x");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "missing.json: cannot open"));

  result = Run({"tokenizer", "encode"}, "x");  // --tokenizer is required.
  EXPECT_NE(result.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "--tokenizer"));
}

}  // namespace
}  // namespace prolong
