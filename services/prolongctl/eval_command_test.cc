// `prolongctl eval rescore` as an operator runs it, on HELMET-format output files.

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"

namespace prolong::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";
constexpr char kNq[] =
    "evaluator/metrics/testdata/"
    "kilt_nq_eval_nq-dev_in131072_size3_shots2_sampFalsemax20min0t0.0p1.0_chatFalse_42.json";
constexpr char kJsonKv[] =
    "evaluator/metrics/testdata/"
    "json_kv_eval_test_k2_dep6_in8192_size2_shots2_sampFalsemax100min0t0.0p1.0_chatFalse_42.json";
constexpr char kRerank[] =
    "evaluator/metrics/testdata/"
    "msmarco_rerank_psg_eval_test_reranking_data_k4_dep3_in8192_size2_shots2_sampFalsemax200min0t0."
    "0p1.0_chatFalse_42.json";

prolong::testing::RunResult RunProlongctl(std::vector<std::string> args) {
  args.insert(args.begin(), kProlongctl);
  absl::StatusOr<prolong::testing::RunResult> result =
      prolong::testing::Run(args, absl::Seconds(60));
  EXPECT_OK(result);
  return result.ok() ? *result : prolong::testing::RunResult{};
}

TEST(EvalRescoreTest, PrintsEachFilesDatasetAndAveragesAsATable) {
  const prolong::testing::RunResult run = RunProlongctl({"eval", "rescore", kNq, kJsonKv});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_EQ(run.stderr_text, "");
  EXPECT_THAT(run.stdout_text, HasSubstr(std::string(kNq) + "\n"));
  EXPECT_THAT(run.stdout_text,
              HasSubstr("dataset kilt_nq (rag), 3 examples; HELMET reports substring_exact_match"));
  // Rescored next to stored: 2 of 3 found, as stored.
  EXPECT_THAT(run.stdout_text, HasSubstr("substring_exact_match           66.67        66.67"));
  EXPECT_THAT(run.stdout_text, HasSubstr("input_len                      200.00       200.00"));
  EXPECT_THAT(run.stdout_text, Not(HasSubstr("differs")));
  // The second file has no stored averages.
  EXPECT_THAT(run.stdout_text, HasSubstr("dataset json_kv (recall), 2 examples"));
  EXPECT_THAT(run.stdout_text, HasSubstr("exact_match                     50.00            -"));
}

TEST(EvalRescoreTest, SaysWhenHelmetsMetricIsNotInTheFile) {
  const std::string dir = prolong::testing::MakeTempDir();
  const std::string judged = dir + "/narrativeqa_130772_eval__in131072_size1_shots2.json";
  std::ofstream(judged) << R"({"data": [{"output": "Answer: a dog", "answer": ["A dog."]}],
                               "averaged_metrics": {"rougeL_f1": 100.0, "gpt-4-score": 2.5}})";
  const prolong::testing::RunResult run = RunProlongctl({"eval", "rescore", judged, kRerank});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_THAT(run.stdout_text,
              HasSubstr("dataset narrativeqa_130772 (longqa), 1 examples; HELMET reports "
                        "gpt-4-score (a GPT-4o judge's score, which only HELMET's judge "
                        "scripts add; rescored here: rougeL_f1)"));
  EXPECT_THAT(run.stdout_text, HasSubstr("rougeL_f1                      100.00       100.00\n"));
  // A stored metric that rescoring does not compute is shown as stored.
  EXPECT_THAT(run.stdout_text, HasSubstr("gpt-4-score                         -         2.50\n"));
  // Four candidates give no cutoff of 10.
  EXPECT_THAT(run.stdout_text, HasSubstr("HELMET reports NDCG@10 (not in this file)"));
}

TEST(EvalRescoreTest, JsonListsEveryFile) {
  const prolong::testing::RunResult run =
      RunProlongctl({"eval", "rescore", "--json", kNq, kJsonKv});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const nlohmann::json all = nlohmann::json::parse(run.stdout_text);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]["file"], kNq);
  EXPECT_EQ(all[0]["dataset"], "kilt_nq");
  EXPECT_EQ(all[0]["category"], "rag");
  EXPECT_EQ(all[0]["primary_metric"], "substring_exact_match");
  EXPECT_EQ(all[0]["examples"], 3);
  EXPECT_EQ(all[0]["averaged_metrics"]["substring_exact_match"], 2.0 / 3 * 100);
  EXPECT_EQ(all[0]["stored_averaged_metrics"], all[0]["averaged_metrics"]);
  EXPECT_EQ(all[1]["dataset"], "json_kv");
  EXPECT_EQ(all[1]["averaged_metrics"]["exact_match"], 50.0);
  EXPECT_TRUE(all[1]["stored_averaged_metrics"].empty());
}

TEST(EvalRescoreTest, StaleStoredValuesAreMarked) {
  const std::string path =
      prolong::testing::MakeTempDir() + "/ruler_niah_mv_eval_v_in8192_size1.json";
  std::ofstream(path) << R"({"data": [{"output": "7 and 8", "answer": ["7", "9"]}],
                             "averaged_metrics": {"ruler_recall": 100.0}})";
  const prolong::testing::RunResult run = RunProlongctl({"eval", "rescore", path});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_THAT(run.stdout_text, HasSubstr("ruler_recall                    50.00       100.00  *"));
  EXPECT_THAT(run.stdout_text, HasSubstr("* differs from the value stored in the file"));
}

TEST(EvalRescoreTest, AMalformedFileIsOneLineNamingItAndTheOthersStillPrint) {
  const std::string dir = prolong::testing::MakeTempDir();
  const std::string broken = dir + "/kilt_nq_eval_x_in8192_size1_shots2.json";
  std::ofstream(broken) << "{\"data\": [\n  {\"output\": \"x\",}\n]}";
  const prolong::testing::RunResult run = RunProlongctl({"eval", "rescore", broken, kNq});
  EXPECT_EQ(run.exit_code, 1);
  const std::vector<std::string> lines = absl::StrSplit(run.stderr_text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1u) << run.stderr_text;
  EXPECT_THAT(lines[0], HasSubstr("prolongctl eval rescore: " + broken +
                                  ": not valid JSON: parse error at line 2"));
  EXPECT_THAT(run.stdout_text, HasSubstr("dataset kilt_nq"));

  const prolong::testing::RunResult missing =
      RunProlongctl({"eval", "rescore", dir + "/none.json"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.stderr_text, HasSubstr(dir + "/none.json"));
}

TEST(EvalRescoreTest, NeedsAFile) {
  const prolong::testing::RunResult run = RunProlongctl({"eval", "rescore"});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.stderr_text, HasSubstr("files"));
}

}  // namespace
}  // namespace prolong::ctl
