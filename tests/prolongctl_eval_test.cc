// `prolongctl eval` as an operator runs it: a checkpoint scored on a HELMET task with its files
// written, resumed from the result store, gated against a baseline, and two evaluations
// compared.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "datamixer/store/store.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong {
namespace {

using ::testing::HasSubstr;

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";
constexpr int64_t kLlama3Vocabulary = 128256;

class ProlongctlEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ranks_ = dir_ + "/tiny.tiktoken";
    std::ofstream(ranks_, std::ios::binary) << tokenizer::ByteRankFile({"ab", "e ", "th"});
    model::LlamaConfig config = model::testing::TinyLlamaConfig();
    config.vocab_size = kLlama3Vocabulary;
    config.max_position_embeddings = 2048;
    config.eos_token_ids = {};
    ASSERT_OK(model::SaveLlama(*model::CreateLlama(config, 9).value(), dir_ + "/model"));
  }

  testing::RunResult Eval(std::vector<std::string> args) {
    args.insert(args.begin(), {kProlongctl, "eval"});
    absl::StatusOr<testing::RunResult> result = testing::Run(args, absl::Seconds(300));
    EXPECT_OK(result);
    return result.ok() ? *result : testing::RunResult{};
  }

  std::vector<std::string> RunArgs(const std::string& out) {
    return {"run",
            "--checkpoint",
            dir_ + "/model",
            "--tokenizer",
            ranks_,
            "--preset",
            "llama3",
            "--tasks",
            "json_kv",
            "--lengths",
            "1024",
            "--samples",
            "2",
            "--device",
            "cpu",
            "--results",
            dir_ + "/results",
            "--out",
            out};
  }

  std::string dir_;
  std::string ranks_;
};

TEST_F(ProlongctlEvalTest, ScoresResumesGatesAndCompares) {
  const testing::RunResult first = Eval(RunArgs(dir_ + "/first"));
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  EXPECT_THAT(first.stdout_text, HasSubstr("category"));
  EXPECT_THAT(first.stdout_text, HasSubstr("recall"));
  EXPECT_THAT(first.stdout_text, HasSubstr("json_kv @1K"));
  EXPECT_THAT(first.stderr_text, HasSubstr("2/2 examples"));
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/first/evaluation.json"));
  int helmet_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/first")) {
    helmet_files += entry.path().filename().string().rfind("json_kv_eval_", 0) == 0;
  }
  EXPECT_EQ(helmet_files, 2);  // the output file and its .score

  // The same run again: every example comes from the result store; no drop against itself.
  std::vector<std::string> again = RunArgs(dir_ + "/second");
  again.insert(again.end(), {"--baseline", dir_ + "/first/evaluation.json", "--max-drop", "0"});
  const testing::RunResult second = Eval(again);
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  EXPECT_THAT(second.stderr_text, HasSubstr(" 0 tokens/s"));
  EXPECT_THAT(second.stderr_text, HasSubstr("no category fell more than 0 points"));

  // A baseline that scored higher: the gate names the category and length and exits 3.
  nlohmann::json baseline = nlohmann::json::parse(*ReadFile(dir_ + "/first/evaluation.json"));
  baseline["results"][0]["metrics"]["substring_exact_match"] = 100.0;
  ASSERT_OK(WriteFileAtomically(dir_ + "/better.json", baseline.dump()));
  std::vector<std::string> gated = RunArgs(dir_ + "/third");
  gated.insert(gated.end(), {"--baseline", dir_ + "/better.json", "--max-drop", "5"});
  const testing::RunResult third = Eval(gated);
  EXPECT_EQ(third.exit_code, 3) << third.stderr_text;
  EXPECT_THAT(third.stderr_text, HasSubstr("recall at 1024 tokens fell"));

  const testing::RunResult compared = Eval({"compare", dir_ + "/first", dir_ + "/better.json"});
  ASSERT_EQ(compared.exit_code, 0) << compared.stderr_text;
  EXPECT_THAT(compared.stdout_text, HasSubstr("json_kv @1K"));
  EXPECT_THAT(compared.stdout_text, HasSubstr("100.00"));
}

TEST_F(ProlongctlEvalTest, PositionLossByBucket) {
  {
    auto store = store::Store::OpenForWriting(dir_ + "/store", {"test", 128256});
    ASSERT_OK(store);
    std::vector<store::Document> documents;
    for (int d = 0; d < 3; ++d) {
      std::vector<uint32_t> tokens;
      for (int t = 0; t < 40 + 20 * d; ++t) tokens.push_back((t * 7 + d) % 300);
      documents.push_back({"books", absl::StrCat("books/", d), tokens, ""});
    }
    ASSERT_OK((*store)->shard().AddBatch(documents));
  }
  const std::vector<std::string> args = {"position-loss",
                                         "--checkpoint",
                                         dir_ + "/model",
                                         "--store",
                                         dir_ + "/store",
                                         "--domain",
                                         "books",
                                         "--max-length",
                                         "64",
                                         "--bucket",
                                         "16",
                                         "--device",
                                         "cpu"};
  const testing::RunResult table = Eval(args);
  ASSERT_EQ(table.exit_code, 0) << table.stderr_text;
  EXPECT_THAT(table.stdout_text, HasSubstr("3 documents of 'books'"));
  EXPECT_THAT(table.stdout_text, HasSubstr("48-64"));

  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  const testing::RunResult json = Eval(json_args);
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  const nlohmann::json parsed = nlohmann::json::parse(json.stdout_text);
  ASSERT_EQ(parsed["buckets"].size(), 4u);
  int64_t tokens = 0;
  for (const auto& bucket : parsed["buckets"]) tokens += bucket["tokens"].get<int64_t>();
  EXPECT_EQ(tokens, 39 + 59 + 63);  // every next token of the documents cut at 64
  EXPECT_GT(parsed["buckets"][0]["mean_loss"].get<double>(), 0);

  std::vector<std::string> other = args;
  other[6] = "code";  // --domain
  const testing::RunResult missing = Eval(other);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.stderr_text, HasSubstr("domain 'code' has no documents"));
}

TEST_F(ProlongctlEvalTest, BadInputIsOneLine) {
  std::vector<std::string> args = RunArgs(dir_ + "/out");
  args[8] = "json_kw";  // --tasks
  testing::RunResult result = Eval(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("json_kv"));
  args = RunArgs(dir_ + "/out");
  args[2] = dir_ + "/absent";  // --checkpoint
  result = Eval(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("absent: not a directory"));
  result = Eval({"compare", dir_ + "/nothing.json", dir_ + "/nothing.json"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("nothing.json"));
}

}  // namespace
}  // namespace prolong
