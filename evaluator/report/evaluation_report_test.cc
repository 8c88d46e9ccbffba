#include "evaluator/report/evaluation_report.h"

#include <string>

#include "common/file.h"
#include "common/status_matchers.h"
#include "evaluator/report/category_scores.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::evaluator {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

v1::TaskResult Result(const std::string& task, const std::string& category, int64_t length,
                      double score, const std::string& config = "h1") {
  v1::TaskResult result;
  result.set_task(task);
  result.set_category(category);
  result.set_input_length(length);
  result.set_num_examples(10);
  result.set_primary_metric("substring_exact_match");
  (*result.mutable_metrics())["substring_exact_match"] = score;
  (*result.mutable_metrics())["f1"] = score / 2;
  result.set_config_hash(config);
  return result;
}

v1::Evaluation Evaluation(const std::vector<v1::TaskResult>& results, const std::string& path) {
  v1::Evaluation evaluation;
  evaluation.set_checkpoint_path(path);
  for (const v1::TaskResult& result : results) *evaluation.add_results() = result;
  for (const v1::CategoryScore& score : CategoryScores(results)) {
    *evaluation.add_category_scores() = score;
  }
  return evaluation;
}

TEST(CategoryScoresTest, MeansPerLengthThenOverLengths) {
  const auto scores = CategoryScores(
      {Result("json_kv", "recall", 8192, 60), Result("ruler_niah_mk_2", "recall", 8192, 40),
       Result("json_kv", "recall", 16384, 20), Result("kilt_nq", "rag", 8192, 30)});
  ASSERT_EQ(scores.size(), 5u);
  EXPECT_EQ(scores[0].category(), "recall");
  EXPECT_EQ(scores[0].input_length(), 8192);
  EXPECT_DOUBLE_EQ(scores[0].score(), 50);
  EXPECT_DOUBLE_EQ(scores[1].score(), 20);
  EXPECT_EQ(scores[2].input_length(), 0);
  EXPECT_DOUBLE_EQ(scores[2].score(), 35);  // (50 + 20) / 2: lengths weigh alike
  EXPECT_EQ(scores[3].category(), "rag");
}

TEST(EvaluationReportTest, TheTableHasACategoryRowAndALengthColumn) {
  const std::string table = FormatScores(Evaluation(
      {Result("json_kv", "recall", 8192, 60), Result("json_kv", "recall", 16384, 20)}, "ckpt"));
  EXPECT_THAT(table, HasSubstr("category         8K      16K      avg"));
  EXPECT_THAT(table, HasSubstr("recall        60.00    20.00    40.00"));
  EXPECT_THAT(table, HasSubstr("json_kv @16K"));
}

TEST(EvaluationReportTest, RegressionsCompareOnlyTheSameConfigs) {
  const v1::Evaluation baseline =
      Evaluation({Result("json_kv", "recall", 8192, 60), Result("kilt_nq", "rag", 8192, 30),
                  Result("kilt_nq", "rag", 16384, 30)},
                 "base");
  const v1::Evaluation current =
      Evaluation({Result("json_kv", "recall", 8192, 52), Result("kilt_nq", "rag", 8192, 10, "h2"),
                  Result("kilt_nq", "rag", 16384, 27)},
                 "new");
  const std::vector<Regression> regressions = FindRegressions(baseline, current, 5);
  ASSERT_EQ(regressions.size(), 1u);  // rag at 8K is another config; rag at 16K fell 3
  EXPECT_EQ(regressions[0].category, "recall");
  EXPECT_EQ(regressions[0].input_length, 8192);
  EXPECT_DOUBLE_EQ(regressions[0].baseline, 60);
  EXPECT_DOUBLE_EQ(regressions[0].current, 52);
  EXPECT_TRUE(FindRegressions(baseline, current, 8).empty());

  const std::string comparison = FormatComparison(baseline, current);
  EXPECT_THAT(comparison, HasSubstr("recall     8K        60.00    52.00    -8.00"));
  EXPECT_THAT(comparison, HasSubstr("kilt_nq @8K: different prompts or settings (h1 against h2)"));
  EXPECT_THAT(comparison, Not(HasSubstr("rag        8K")));
}

TEST(EvaluationReportTest, FilesRoundTripAndOthersAreRefused) {
  const std::string dir = prolong::testing::MakeTempDir();
  const v1::Evaluation evaluation = Evaluation({Result("json_kv", "recall", 8192, 60)}, "ckpt");
  ASSERT_OK(WriteEvaluationFile(evaluation, dir + "/evaluation.json"));
  ASSERT_OK_AND_ASSIGN(const v1::Evaluation read, ReadEvaluationFile(dir + "/evaluation.json"));
  EXPECT_EQ(read.DebugString(), evaluation.DebugString());
  ASSERT_OK(WriteFileAtomically(dir + "/other.json", "{\"results\": 3}"));
  EXPECT_THAT(ReadEvaluationFile(dir + "/other.json"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("other.json")));
  EXPECT_THAT(ReadEvaluationFile(dir + "/absent.json"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace prolong::evaluator
