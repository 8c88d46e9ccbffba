#include "evaluator/metrics/retrieval.h"

#include <cmath>
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

TEST(ParseRankingsTest, IdsInOrderWithScoresLengthMinusPosition) {
  EXPECT_THAT(ParseRankings("Ranking: [ID3] > [ID1] > [ID2]"),
              ElementsAre(Pair("3", 3), Pair("1", 2), Pair("2", 1)));
  EXPECT_THAT(ParseRankings("ID: 5 > ID: 2"), ElementsAre(Pair("5", 2), Pair("2", 1)));
  EXPECT_THAT(ParseRankings("3>1>2"), ElementsAre(Pair("3", 3), Pair("1", 2), Pair("2", 1)));
}

TEST(ParseRankingsTest, LongestChainByCharactersFirstOnTies) {
  EXPECT_THAT(ParseRankings("1 > 2 and then 10 > 20 > 3"),
              ElementsAre(Pair("10", 3), Pair("20", 2), Pair("3", 1)));
  // Equal length (6 characters): the first wins.
  EXPECT_THAT(ParseRankings("12 > 3 or 45 > 6"), ElementsAre(Pair("12", 2), Pair("3", 1)));
  // Characters, not ids: "123456 > 7" (10) beats "1 > 2 > 3" (9).
  EXPECT_THAT(ParseRankings("123456 > 7 and 1 > 2 > 3"),
              ElementsAre(Pair("123456", 2), Pair("7", 1)));
}

TEST(ParseRankingsTest, EdgeCases) {
  // A repeated id keeps its first score; the rest keep their positions.
  EXPECT_THAT(ParseRankings("3 > 1 > 3 > 2"),
              ElementsAre(Pair("3", 4), Pair("1", 3), Pair("2", 1)));
  // A dangling ">" ends the chain.
  EXPECT_THAT(ParseRankings("3 > 1 >"), ElementsAre(Pair("3", 2), Pair("1", 1)));
  // Every "id" is deleted, even inside words: "identity 7" leaves "entity 7".
  EXPECT_THAT(ParseRankings("identity 7"), ElementsAre(Pair("7", 1)));
  // No digits: the whole lowercased text (brackets, colons, "id" removed) is one id.
  EXPECT_THAT(ParseRankings("No [ranking]: Idk"), ElementsAre(Pair("no ranking k", 1)));
  EXPECT_THAT(ParseRankings(""), ElementsAre(Pair("", 1)));
  // One pass of str.replace: "iidd" leaves "id".
  EXPECT_THAT(ParseRankings("iidd"), ElementsAre(Pair("id", 1)));
  // Python's \d takes other scripts' digits (ARABIC-INDIC here).
  EXPECT_THAT(ParseRankings("\u0663 > \u0661"), ElementsAre(Pair("\u0663", 2), Pair("\u0661", 1)));
}

TEST(HelmetCutoffsTest, ThoseNotAboveTheCandidates) {
  EXPECT_THAT(HelmetCutoffs(1000), ElementsAre(1, 5, 10, 20, 50, 100, 200, 500, 1000));
  EXPECT_THAT(HelmetCutoffs(100), ElementsAre(1, 5, 10, 20, 50, 100));
  EXPECT_THAT(HelmetCutoffs(4), ElementsAre(1));
}

double Metric(const MetricValues& values, const std::string& name) {
  const double* value = FindMetric(values, name);
  EXPECT_NE(value, nullptr) << name;
  return value == nullptr ? -1 : *value;
}

// d1, d2, d3 retrieved in that order with labels 0, 2, 1; d4 (label 3) not retrieved.
TEST(RetrievalMetricsTest, GradedNdcgMapRecallPrecisionMrrByHand) {
  const Ranking ranking = {{"d1", 3}, {"d2", 2}, {"d3", 1}};
  const std::vector<Qrel> qrels = {{"d1", 0}, {"d2", 2}, {"d3", 1}, {"d4", 3}};
  ASSERT_OK_AND_ASSIGN(const MetricValues metrics, RetrievalMetrics(ranking, qrels, {1, 2, 5}));

  std::vector<std::string> names;
  for (const auto& [name, value] : metrics) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("NDCG@1", "NDCG@2", "NDCG@5", "MAP@1", "MAP@2", "MAP@5",
                                 "Recall@1", "Recall@2", "Recall@5", "P@1", "P@2", "P@5", "MRR"));
  // DCG: 0, 2/log2(3) = 1.26186, + 1/log2(4) = 1.76186. Ideal gains 3, 2, 1: 3, 4.26186,
  // 4.76186.
  EXPECT_EQ(Metric(metrics, "NDCG@1"), 0.0);
  EXPECT_EQ(Metric(metrics, "NDCG@2"), 0.29608);  // 1.26186 / 4.26186
  EXPECT_EQ(Metric(metrics, "NDCG@5"), 0.36999);  // 1.76186 / 4.76186
  // Three relevant documents (labels >= 1); precisions 1/2 at rank 2 and 2/3 at rank 3.
  EXPECT_EQ(Metric(metrics, "MAP@1"), 0.0);
  EXPECT_EQ(Metric(metrics, "MAP@2"), 0.16667);  // (1/2) / 3
  EXPECT_EQ(Metric(metrics, "MAP@5"), 0.38889);  // (1/2 + 2/3) / 3
  EXPECT_EQ(Metric(metrics, "Recall@2"), 0.33333);
  EXPECT_EQ(Metric(metrics, "Recall@5"), 0.66667);
  EXPECT_EQ(Metric(metrics, "P@1"), 0.0);
  EXPECT_EQ(Metric(metrics, "P@2"), 0.5);
  EXPECT_EQ(Metric(metrics, "P@5"), 0.4);  // missing documents count as non-relevant
  EXPECT_EQ(Metric(metrics, "MRR"), 0.5);
}

TEST(RetrievalMetricsTest, UnjudgedDocumentsAndTies) {
  // "x" has no qrel: a non-relevant document at rank 1.
  ASSERT_OK_AND_ASSIGN(MetricValues unjudged,
                       RetrievalMetrics({{"x", 2}, {"d", 1}}, {{"d", 1}}, {1, 5}));
  EXPECT_EQ(Metric(unjudged, "MRR"), 0.5);
  EXPECT_EQ(Metric(unjudged, "NDCG@1"), 0.0);
  EXPECT_EQ(Metric(unjudged, "NDCG@5"), 0.63093);  // 1 / log2(3) over an ideal 1
  // Equal scores: trec_eval ranks the greater id first, so "b" is at rank 1.
  ASSERT_OK_AND_ASSIGN(MetricValues tied,
                       RetrievalMetrics({{"a", 1}, {"b", 1}}, {{"a", 0}, {"b", 1}}, {1}));
  EXPECT_EQ(Metric(tied, "MRR"), 1.0);
  EXPECT_EQ(Metric(tied, "NDCG@1"), 1.0);
}

TEST(RetrievalMetricsTest, NoRelevantDocumentGivesZeros) {
  ASSERT_OK_AND_ASSIGN(MetricValues metrics,
                       RetrievalMetrics({{"a", 2}, {"b", 1}}, {{"a", 0}, {"b", 0}}, {1, 5}));
  for (const auto& [name, value] : metrics) EXPECT_EQ(value, 0.0) << name;
}

TEST(RetrievalMetricsTest, RejectsBadInput) {
  EXPECT_THAT(RetrievalMetrics({{"a", 1}}, {}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("qrels")));
  EXPECT_THAT(RetrievalMetrics({{"a", 1}}, {{"a", -1}}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(RetrievalMetrics({{"a", 1}}, {{"a", 1}, {"a", 0}}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  EXPECT_THAT(RetrievalMetrics({{"a", 2}, {"a", 1}}, {{"a", 1}}, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  EXPECT_THAT(RetrievalMetrics({{"a", 1}}, {{"a", 1}}, {5, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cutoffs")));
  EXPECT_THAT(RetrievalMetrics({{"a", 1}}, {{"a", 1}}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cutoffs")));
}

}  // namespace
}  // namespace prolong::evaluator::metrics
