#include "evaluator/metrics/rouge.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(RougeTokenizeTest, LowercasesSplitsOnNonAlphanumericsAndStemsLongTokens) {
  // "quick" and "brown" are stems already; "running" -> "run"; "fox" and "s" are too short.
  EXPECT_THAT(RougeTokenize("The quick-brown fox's RUNNING!"),
              ElementsAre("the", "quick", "brown", "fox", "s", "run"));
  EXPECT_THAT(RougeTokenize("cities 2024"), ElementsAre("citi", "2024"));
  EXPECT_THAT(RougeTokenize(""), IsEmpty());
  EXPECT_THAT(RougeTokenize("!!! ..."), IsEmpty());
}

TEST(RougeTokenizeTest, NonAsciiLettersVanish) {
  EXPECT_THAT(RougeTokenize("東京 Tokyo"), ElementsAre("tokyo"));
  EXPECT_THAT(RougeTokenize("東京タワー"), IsEmpty());
  // "é" separates: "café" is "caf".
  EXPECT_THAT(RougeTokenize("café"), ElementsAre("caf"));
  // KELVIN SIGN lowercases to ASCII "k" and stays.
  EXPECT_THAT(RougeTokenize("5\u212a"), ElementsAre("5k"));
}

TEST(RougeLTest, ByHand) {
  // Tokens: the cat sat on the mat / the cat on the mat sat; LCS "the cat on the mat" = 5.
  const RougeScore score = RougeL("the cat sat on the mat", "the cat on the mat sat");
  EXPECT_DOUBLE_EQ(score.precision, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(score.recall, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(score.fmeasure, 5.0 / 6.0);

  // Target 2 tokens, prediction 4, LCS 2: P = 1/2, R = 1, F = 2/3. Stemming makes
  // "Cities" and "city" equal.
  const RougeScore stemmed = RougeL("city lights", "the Cities' lights shine");
  EXPECT_DOUBLE_EQ(stemmed.precision, 0.5);
  EXPECT_DOUBLE_EQ(stemmed.recall, 1.0);
  EXPECT_DOUBLE_EQ(stemmed.fmeasure, 2.0 / 3.0);
}

TEST(RougeLTest, EmptySidesAndVanishingText) {
  const RougeScore empty = RougeL("", "something");
  EXPECT_EQ(empty.precision, 0);
  EXPECT_EQ(empty.recall, 0);
  EXPECT_EQ(empty.fmeasure, 0);
  EXPECT_EQ(RougeL("something", "").fmeasure, 0);
  // Equal CJK texts score 0: no token survives.
  EXPECT_EQ(RougeL("東京", "東京").fmeasure, 0);
  EXPECT_EQ(RougeL("w1 w2", "w3 w4").fmeasure, 0);
}

TEST(RougeLsumTest, SentencesOnNewlinesOnly) {
  // Swapped sentences: the whole-text LCS is 2 of 4, the per-sentence union is all 4.
  EXPECT_DOUBLE_EQ(RougeL("w1 w2\nw3 w4", "w3 w4\nw1 w2").fmeasure, 0.5);
  EXPECT_DOUBLE_EQ(RougeLsum("w1 w2\nw3 w4", "w3 w4\nw1 w2").fmeasure, 1.0);
  // A period does not split sentences.
  EXPECT_DOUBLE_EQ(RougeLsum("w1 w2. w3 w4", "w3 w4. w1 w2").fmeasure, 0.5);
  // Empty lines are dropped; no token on a side gives zeros.
  EXPECT_DOUBLE_EQ(RougeLsum("w1\n\n\nw2", "w1 w2").fmeasure, 1.0);
  EXPECT_EQ(RougeLsum("", "w1").fmeasure, 0);
  EXPECT_EQ(RougeLsum("!!!\n...", "w1").fmeasure, 0);
}

TEST(RougeLsumTest, UnionOfLcsAndCountsAsRougeScore) {
  // r1 = w1 w2 w3 w4 meets c1 in w1 w2 and c2 in w3 w4; r2 = w5 w6 meets c2 in w5:
  // 5 hits of 6 reference and 6 candidate tokens.
  const RougeScore score = RougeLsum("w1 w2 w3 w4\nw5 w6", "w1 w2 w9\nw3 w4 w5");
  EXPECT_DOUBLE_EQ(score.recall, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(score.precision, 5.0 / 6.0);

  // A token is counted at most as often as the candidate has it: the second "w1" misses.
  // Recall 1/2, precision 1, F = 2/3.
  const RougeScore counted = RougeLsum("w1\nw1", "w1");
  EXPECT_DOUBLE_EQ(counted.recall, 0.5);
  EXPECT_DOUBLE_EQ(counted.precision, 1.0);
  EXPECT_DOUBLE_EQ(counted.fmeasure, 2.0 / 3.0);
}

TEST(RougeLsumTest, TieBreakOfTheBacktrackDecidesHits) {
  // r1 = [w1] takes the candidate's only w1. For r2 = [w1 w2] against [w2 w1] both tokens
  // are longest common subsequences; rouge-score's backtrack picks w1, already used, so r2
  // adds nothing: hits 1 of m = 3 and n = 2, F = 2 (1/2)(1/3) / (5/6) = 0.4. Picking w2
  // would give 0.8.
  const RougeScore score = RougeLsum("w1\nw1 w2", "w2 w1");
  EXPECT_DOUBLE_EQ(score.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(score.precision, 0.5);
  EXPECT_DOUBLE_EQ(score.fmeasure, 0.4);
}

}  // namespace
}  // namespace prolong::evaluator::metrics
