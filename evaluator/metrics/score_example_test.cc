#include "evaluator/metrics/score_example.h"

#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::metrics {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

DatasetSpec Spec(const std::string& name) {
  absl::StatusOr<DatasetSpec> spec = LookupDataset(name);
  EXPECT_OK(spec);
  return *spec;
}

double Metric(const ExampleScore& score, const std::string& name) {
  const double* value = FindMetric(score.metrics, name);
  EXPECT_NE(value, nullptr) << name;
  return value == nullptr ? -1 : *value;
}

std::vector<std::string> Names(const MetricValues& values) {
  std::vector<std::string> names;
  for (const auto& [name, value] : values) names.push_back(name);
  return names;
}

TEST(CalculateMetricsTest, KeysInHelmetsOrderMaxOverGolds) {
  const MetricValues metrics = CalculateMetrics("city of", {"London", "City of Light"});
  EXPECT_THAT(metrics, ElementsAre(Pair("exact_match", 0.0), Pair("f1", 0.8),
                                   Pair("substring_exact_match", 0.0), Pair("rougeL_f1", 0.8),
                                   Pair("rougeL_recall", 2.0 / 3.0), Pair("rougeLsum_f1", 0.8),
                                   Pair("rougeLsum_recall", 2.0 / 3.0)));
}

TEST(ScoreExampleTest, QaTakesTheMaxOfRawAndParsedPerMetric) {
  // Raw: "the capital is paris answer france" finds the gold (SubEM 1, F1 2*(1/5)/(6/5));
  // parsed "France" does not. EM is 0 on both. ROUGE-L (stems capit, pari, franc): LCS 1 of
  // 6 tokens, recall 1, F 2/7.
  const Json example = {{"output", "The capital is Paris. Answer: France"}, {"answer", {"Paris"}}};
  ASSERT_OK_AND_ASSIGN(const ExampleScore score, ScoreExample(Spec("kilt_nq"), example));
  EXPECT_THAT(Names(score.metrics),
              ElementsAre("exact_match", "f1", "substring_exact_match", "rougeL_f1",
                          "rougeL_recall", "rougeLsum_f1", "rougeLsum_recall"));
  EXPECT_EQ(Metric(score, "exact_match"), 0.0);
  EXPECT_EQ(Metric(score, "substring_exact_match"), 1.0);
  EXPECT_DOUBLE_EQ(Metric(score, "f1"), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(Metric(score, "rougeL_f1"), 2.0 / 7.0);
  EXPECT_DOUBLE_EQ(Metric(score, "rougeL_recall"), 1.0);
  EXPECT_EQ(score.parsed_output, "France");
}

TEST(ScoreExampleTest, QaParsedAnswerWins) {
  const Json example = {{"output", "Answer: Paris\nQuestion: next?"},
                        {"answer", {{"Lutetia"}, {"Paris"}}}};
  ASSERT_OK_AND_ASSIGN(const ExampleScore score, ScoreExample(Spec("kilt_popqa_3"), example));
  EXPECT_EQ(Metric(score, "exact_match"), 1.0);
  EXPECT_EQ(Metric(score, "f1"), 1.0);
  EXPECT_EQ(Metric(score, "rougeL_f1"), 1.0);
  EXPECT_EQ(score.parsed_output, "Paris");
}

TEST(ScoreExampleTest, EmptyOutputScoresZero) {
  const Json example = {{"output", ""}, {"answer", "Paris"}};
  ASSERT_OK_AND_ASSIGN(const ExampleScore score, ScoreExample(Spec("kilt_nq"), example));
  for (const auto& [name, value] : score.metrics) EXPECT_EQ(value, 0.0) << name;
  EXPECT_EQ(score.parsed_output, "");
}

TEST(ScoreExampleTest, JsonKvParsesAfterCorrespondingValue) {
  const Json example = {{"output", "Corresponding value: 1a2b-3c\nKey: 9"}, {"answer", "1a2b-3c"}};
  ASSERT_OK_AND_ASSIGN(const ExampleScore score, ScoreExample(Spec("json_kv"), example));
  EXPECT_EQ(Metric(score, "exact_match"), 1.0);
  EXPECT_EQ(score.parsed_output, "1a2b-3c");
}

TEST(ScoreExampleTest, IclScoresOnlyTheParsedLabel) {
  // "1" is in "11": SubEM 1, EM 0.
  ASSERT_OK_AND_ASSIGN(const ExampleScore eleven,
                       ScoreExample(Spec("icl_banking77_5900shot_balance"),
                                    {{"output", "label: 11"}, {"answer", "1"}}));
  EXPECT_EQ(Metric(eleven, "exact_match"), 0.0);
  EXPECT_EQ(Metric(eleven, "substring_exact_match"), 1.0);
  EXPECT_EQ(eleven.parsed_output, "11");
  // The raw output holds the gold, the parsed label does not: nothing counts.
  ASSERT_OK_AND_ASSIGN(const ExampleScore parsed_only,
                       ScoreExample(Spec("icl_nlu_510shot_balance"),
                                    {{"output", "I think 1\nlabel: 2"}, {"answer", "1"}}));
  EXPECT_EQ(Metric(parsed_only, "exact_match"), 0.0);
  EXPECT_EQ(Metric(parsed_only, "substring_exact_match"), 0.0);
}

TEST(ScoreExampleTest, MultipleChoiceSubstringIsTheRawOptionText) {
  const DatasetSpec choice = Spec("infbench_choice_eng_130862");
  ASSERT_OK_AND_ASSIGN(const ExampleScore right,
                       ScoreExample(choice, {{"output", "the answer is b. the red house!"},
                                             {"answer", {"B", "B. The red house"}}}));
  EXPECT_EQ(Metric(right, "substring_exact_match"), 1.0);
  EXPECT_EQ(Metric(right, "exact_match"), 1.0);  // set by the substring test
  EXPECT_EQ(Names(right.metrics).back(), "substring_exact_match");

  // Without the period the option text is not a raw substring, while the parsed first line
  // normalizes to the gold "b red house": EM 1, SubEM 0.
  ASSERT_OK_AND_ASSIGN(
      const ExampleScore no_period,
      ScoreExample(choice, {{"output", "B The red house"}, {"answer", {"B", "B. The red house"}}}));
  EXPECT_EQ(Metric(no_period, "exact_match"), 1.0);
  EXPECT_EQ(Metric(no_period, "substring_exact_match"), 0.0);

  ASSERT_OK_AND_ASSIGN(
      const ExampleScore wrong,
      ScoreExample(choice, {{"output", "Answer: A"}, {"answer", {"B", "B. The red house"}}}));
  EXPECT_EQ(Metric(wrong, "exact_match"), 0.0);
  EXPECT_EQ(Metric(wrong, "substring_exact_match"), 0.0);
  EXPECT_EQ(wrong.parsed_output, "A");
}

TEST(ScoreExampleTest, RulerRecallIsTheShareOfGoldsInTheRawOutput) {
  const DatasetSpec mv = Spec("ruler_niah_mv");
  ASSERT_OK_AND_ASSIGN(const ExampleScore two_of_three,
                       ScoreExample(mv, {{"output", "The values are 1234 and 5678."},
                                         {"answer", {"1234", "5678", "9999"}}}));
  EXPECT_THAT(two_of_three.metrics, ElementsAre(Pair("ruler_recall", 2.0 / 3.0)));
  EXPECT_EQ(two_of_three.parsed_output, "The values are 1234 and 5678.");
  ASSERT_OK_AND_ASSIGN(const ExampleScore cased,
                       ScoreExample(mv, {{"output", "uuid ABC-def"}, {"answer", {"abc-DEF"}}}));
  EXPECT_EQ(Metric(cased, "ruler_recall"), 1.0);
  // A string answer counts per character, as Python iterates it.
  ASSERT_OK_AND_ASSIGN(const ExampleScore chars,
                       ScoreExample(mv, {{"output", "a"}, {"answer", "ab"}}));
  EXPECT_EQ(Metric(chars, "ruler_recall"), 0.5);
}

TEST(ScoreExampleTest, RerankFromQrelsWithHelmetCutoffs) {
  // The retrieval example of retrieval_test: labels 0, 2, 1 retrieved, a 3 missed.
  const Json example = Json::parse(R"({
      "qid": "q1",
      "output": "Ranking: [ID1] > [ID2] > [ID3]",
      "qrel": [["1", "0"], ["2", "2"], ["3", "1"], ["4", 3]]})");
  ScoreOptions options;
  options.rerank_candidates = 10;
  ASSERT_OK_AND_ASSIGN(const ExampleScore score,
                       ScoreExample(Spec("msmarco_rerank_psg"), example, options));
  EXPECT_THAT(Names(score.metrics),
              ElementsAre("NDCG@1", "NDCG@5", "NDCG@10", "MAP@1", "MAP@5", "MAP@10", "Recall@1",
                          "Recall@5", "Recall@10", "P@1", "P@5", "P@10", "MRR", "num_preds"));
  EXPECT_EQ(Metric(score, "NDCG@10"), 0.36999);
  EXPECT_EQ(Metric(score, "MAP@10"), 0.38889);
  EXPECT_EQ(Metric(score, "P@10"), 0.2);
  EXPECT_EQ(Metric(score, "MRR"), 0.5);
  EXPECT_EQ(Metric(score, "num_preds"), 3);
  EXPECT_EQ(score.parsed_output, Json::parse(R"({"1": 3, "2": 2, "3": 1})"));

  // Without options the example's own 4 candidates give the cutoff 1 only.
  ASSERT_OK_AND_ASSIGN(const ExampleScore own, ScoreExample(Spec("msmarco_rerank_psg"), example));
  EXPECT_THAT(Names(own.metrics),
              ElementsAre("NDCG@1", "MAP@1", "Recall@1", "P@1", "MRR", "num_preds"));
}

TEST(ScoreExampleTest, BadExamplesNameTheField) {
  const DatasetSpec nq = Spec("kilt_nq");
  EXPECT_THAT(ScoreExample(nq, {{"answer", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'output' is missing")));
  EXPECT_THAT(ScoreExample(nq, {{"output", 3}, {"answer", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'output' must be")));
  EXPECT_THAT(ScoreExample(nq, {{"output", "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'answer'")));
  EXPECT_THAT(ScoreExample(nq, {{"output", "x"}, {"answer", Json::array()}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(ScoreExample(nq, Json::array()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("object")));
  EXPECT_THAT(ScoreExample(Spec("msmarco_rerank_psg"),
                           {{"output", "1"}, {"qrel", Json::parse(R"([["1", "high"]])")}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("qrel[0][1]")));
  EXPECT_THAT(ScoreExample(Spec("infbench_choice_eng_7982"), {{"output", "A"}, {"answer", "A"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple choice")));
}

}  // namespace
}  // namespace prolong::evaluator::metrics
