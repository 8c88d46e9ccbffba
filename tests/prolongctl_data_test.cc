// `prolongctl data ingest`, `data stats` and `data verify` end to end, as separate processes on
// one store.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";

class ProlongctlDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ranks_ = Write("bytes.tiktoken", tokenizer::ByteRankFile());
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  testing::RunResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), kProlongctl);
    absl::StatusOr<testing::RunResult> result = testing::Run(args, absl::Seconds(60));
    EXPECT_OK(result);
    return result.ok() ? *result : testing::RunResult{};
  }

  std::string dir_;
  std::string ranks_;
};

TEST_F(ProlongctlDataTest, IngestTwiceThenStats) {
  const std::string input = Write("web.jsonl",
                                  "{\"text\": \"abcdef\"}\n"
                                  "{\"text\": \"ghij\"}\n"
                                  "{\"text\": \"a much longer document here\"}\n"
                                  "{\"nope\": 1}\n");
  const std::vector<std::string> ingest = {"data",         "ingest", "--store",  dir_ + "/store",
                                           "--domain",     "web",    "--format", "jsonl",
                                           "--tokenizer",  ranks_,   "--preset", "cl100k_base",
                                           "--min-tokens", "5",      input};
  testing::RunResult first = Run(ingest);
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  EXPECT_TRUE(absl::StrContains(
      first.stdout_text, "ingested web: 2 added, 0 duplicate, 1 too short (< 5 tokens), 1 invalid"))
      << first.stdout_text;
  EXPECT_TRUE(absl::StrContains(first.stdout_text, input + ":4: no string field 'text'"));

  testing::RunResult second = Run(ingest);
  ASSERT_EQ(second.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(second.stdout_text, "0 added, 2 duplicate")) << second.stdout_text;

  testing::RunResult stats = Run({"data", "stats", "--store", dir_ + "/store", "--json"});
  ASSERT_EQ(stats.exit_code, 0) << stats.stderr_text;
  // 6 + 27 byte tokens; "ghij" (4) was too short.
  EXPECT_TRUE(absl::StrContains(stats.stdout_text,
                                "{\"name\": \"web\", \"documents\": 2, \"tokens\": 33, "
                                "\"min_document_tokens\": 6, \"max_document_tokens\": 27"))
      << stats.stdout_text;
  EXPECT_TRUE(absl::StrContains(stats.stdout_text, "\"fingerprint\": \""));

  // Every document reads back as its id says (damage: datamixer/store/verify_test).
  testing::RunResult verified = Run({"data", "verify", "--store", dir_ + "/store"});
  ASSERT_EQ(verified.exit_code, 0) << verified.stderr_text;
  EXPECT_EQ(verified.stdout_text, "verified 2 documents (33 tokens): every one matches its id\n");
  // A damaged table file is named (the documents it held, when they can be listed, too).
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/store/shard")) {
    if (entry.path().extension() != ".sst") continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const char byte = static_cast<char>(file.get());
    file.seekp(0);
    file.put(static_cast<char>(byte ^ 0x5A));
  }
  testing::RunResult damaged = Run({"data", "verify", "--store", dir_ + "/store"});
  EXPECT_EQ(damaged.exit_code, 1);
  EXPECT_TRUE(std::regex_search(damaged.stdout_text,
                                std::regex(R"(^BAD file: Corruption: .*/store/shard/\d+\.sst)")))
      << damaged.stdout_text << damaged.stderr_text;
  testing::RunResult missing = Run({"data", "verify", "--store", dir_ + "/none"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.stderr_text,
            "prolongctl data verify: " + dir_ + "/none: not a store (no MANIFEST)\n");
}

TEST_F(ProlongctlDataTest, ErrorsAreOneClearLine) {
  testing::RunResult result = Run({"data", "stats", "--store", dir_ + "/none"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.stderr_text,
            "prolongctl data stats: " + dir_ + "/none: not a store (no MANIFEST)\n");

  result = Run({"data", "ingest", "--store", dir_ + "/store", "--domain", "web", "--tokenizer",
                ranks_, "--preset", "llama3", dir_ + "/missing.txt"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "missing.txt: not a readable file"));

  // A store keeps the tokenizer it was built with.
  result = Run({"data", "ingest", "--store", dir_ + "/store", "--domain", "web", "--tokenizer",
                ranks_, "--preset", "llama3", Write("b.txt", "text")});
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  result = Run({"data", "ingest", "--store", dir_ + "/store", "--domain", "web", "--tokenizer",
                ranks_, "--preset", "cl100k_base", Write("c.txt", "text")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "/store: built with tokenizer "))
      << result.stderr_text;

  result = Run({"data", "ingest", "--store", dir_ + "/store", "--domain", "Bad Name", "--tokenizer",
                ranks_, "--preset", "llama3", Write("a.txt", "text")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "domain 'Bad Name' is not [a-z0-9_-]{1,63}"))
      << result.stderr_text;
}

TEST_F(ProlongctlDataTest, PlanPrintsEachBatchAndIsTheSameEveryTime) {
  std::string long_text, short_lines;
  for (int i = 0; i < 8; ++i) long_text += "0123456789abcdef";  // 128 byte tokens.
  for (int i = 0; i < 40; ++i) short_lines += absl::StrCat("{\"text\": \"doc ", i, " xyz\"}\n");
  for (const auto& [domain, format, input] :
       {std::tuple{"books", "text", Write("book.txt", long_text)},
        std::tuple{"web", "jsonl", Write("web.jsonl", short_lines)}}) {
    testing::RunResult ingest =
        Run({"data", "ingest", "--store", dir_ + "/store", "--domain", domain, "--format", format,
             "--tokenizer", ranks_, "--preset", "cl100k_base", input});
    ASSERT_EQ(ingest.exit_code, 0) << ingest.stderr_text;
  }
  // 16-token sequences, 4 a batch, 3 batches: books gives 8 chunks, needs 0.5 * 12 = 6.
  const std::string stage = Write("stage.yaml", R"(
name: test
seq_len: 16
batch_tokens: 64
total_tokens: 192
mixture:
  - {domain: books, proportion: 0.5, packing: long}
  - {domain: web, proportion: 0.5, packing: short}
)");
  const std::vector<std::string> plan = {"data", "plan",   "--store", dir_ + "/store", "--stage",
                                         stage,  "--seed", "3",       "--json"};
  testing::RunResult first = Run(plan);
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  EXPECT_TRUE(absl::StrContains(first.stdout_text,
                                R"("seq_len":"16","sequences_per_batch":"4","steps":"3")"))
      << first.stdout_text;
  EXPECT_TRUE(absl::StrContains(
      first.stdout_text, R"({"domain":"books","sequences":"6","tokens":"96","epochs":0.75})"))
      << first.stdout_text;
  EXPECT_TRUE(absl::StrContains(first.stdout_text,
                                R"({"step":"0","domain_tokens":["32","32"],"documents":)"));
  EXPECT_EQ(Run(plan).stdout_text, first.stdout_text) << "a plan is a function of its inputs";

  testing::RunResult text =
      Run({"data", "plan", "--store", dir_ + "/store", "--stage", stage, "--steps", "2"});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_TRUE(absl::StrContains(text.stdout_text, "3 steps of 4 sequences of 16 tokens"))
      << text.stdout_text;
  EXPECT_TRUE(absl::StrContains(text.stdout_text, "       1           32           32"))
      << "step 1: 32 tokens of each domain\n"
      << text.stdout_text;
  EXPECT_FALSE(absl::StrContains(text.stdout_text, "       2           32")) << "--steps 2";
  EXPECT_FALSE(absl::StrContains(text.stdout_text, "imbalance")) << "only with --dp-size";

  // Per step, and over the steps: how the slowest of 2 ranks compares with the mean one, under
  // contiguous slices and as the datamixer serves the batch (never worse).
  testing::RunResult balance = Run({"data", "plan", "--store", dir_ + "/store", "--stage", stage,
                                    "--dp-size", "2", "--micro-batch-sequences", "0"});
  ASSERT_EQ(balance.exit_code, 0) << balance.stderr_text;
  EXPECT_TRUE(absl::StrContains(balance.stdout_text, "contiguous   balanced\n"))
      << balance.stdout_text;
  double contiguous_mean = 0, contiguous_max = 0, balanced_mean = 0, balanced_max = 0;
  const size_t summary = balance.stdout_text.find("imbalance on 2 data-parallel ranks");
  ASSERT_NE(summary, std::string::npos) << balance.stdout_text;
  ASSERT_EQ(std::sscanf(balance.stdout_text.c_str() + balance.stdout_text.find("contiguous slices"),
                        "contiguous slices mean %lf, max %lf balanced (served) mean %lf, max %lf",
                        &contiguous_mean, &contiguous_max, &balanced_mean, &balanced_max),
            4)
      << balance.stdout_text;
  EXPECT_GE(balanced_mean, 1.0);
  EXPECT_LE(balanced_mean, contiguous_mean);
  EXPECT_LE(balanced_max, contiguous_max);
  testing::RunResult uneven =
      Run({"data", "plan", "--store", dir_ + "/store", "--stage", stage, "--dp-size", "3"});
  EXPECT_EQ(uneven.exit_code, 1);
  EXPECT_EQ(uneven.stderr_text,
            "prolongctl data plan: --dp-size: must divide the 4 sequences of a global batch, "
            "got 3\n");

  const std::string greedy = Write("greedy.yaml", R"(
seq_len: 16
batch_tokens: 64
total_tokens: 640
mixture:
  - {domain: books, proportion: 0.5, packing: long}
  - {domain: web, proportion: 0.5, packing: short}
)");
  testing::RunResult refused = Run({"data", "plan", "--store", dir_ + "/store", "--stage", greedy});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.stderr_text,
            "prolongctl data plan: stage.mixture[0] (domain books): the stage needs 20 sequences "
            "of 16 tokens from it, one epoch holds 8: short by 12 sequences (192 tokens); set "
            "stage.allow_repetition or lower its proportion\n");

  testing::RunResult typo = Run(
      {"data", "plan", "--store", dir_ + "/store", "--stage", Write("typo.yaml", "seq_len: x\n")});
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_EQ(typo.stderr_text, "prolongctl data plan: " + dir_ +
                                  "/typo.yaml:1: seq_len: \"x\" is not a whole number in range\n");
}

}  // namespace
}  // namespace prolong
