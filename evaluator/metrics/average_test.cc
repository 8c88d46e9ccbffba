#include "evaluator/metrics/average.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(PythonRoundTest, RoundsTheExactBinaryValueHalfToEven) {
  EXPECT_EQ(PythonRound(0.125, 2), 0.12);  // an exact half: to even
  EXPECT_EQ(PythonRound(0.375, 2), 0.38);
  EXPECT_EQ(PythonRound(2.675, 2), 2.67);        // 2.675 is 2.67499999... in binary
  EXPECT_EQ(PythonRound(0.000005, 5), 0.00001);  // 5e-06 is slightly above in binary
  EXPECT_EQ(PythonRound(0.1234567, 5), 0.12346);
  EXPECT_EQ(PythonRound(1.0 / 3.0, 5), 0.33333);
  EXPECT_EQ(PythonRound(0.0, 5), 0.0);
}

TEST(NumpyMeanTest, PairwiseSummationAsNumpy) {
  // Ten 0.1s: NumPy's eight accumulators give exactly 1.0 (mean 0.1); a running sum gives
  // 0.9999999999999999.
  const std::vector<double> tenths(10, 0.1);
  double running = 0;
  for (double value : tenths) running += value;
  ASSERT_NE(running / 10, 0.1);
  EXPECT_EQ(NumpyMean(tenths), 0.1);
  EXPECT_EQ(NumpyMean({1, 0, 1}), 2.0 / 3.0);
  EXPECT_EQ(NumpyMean({5}), 5.0);
  EXPECT_TRUE(std::isnan(NumpyMean({})));
}

TEST(AverageMetricsTest, TimesHundredExceptLengths) {
  const MetricValues averaged = AverageMetrics({
      {"exact_match", {1, 0, 1}},
      {"num_preds", {3, 5}},
      {"input_len", {100, 201}},
      {"output_len", {7}},
  });
  EXPECT_THAT(averaged, ElementsAre(Pair("exact_match", 2.0 / 3.0 * 100), Pair("num_preds", 400.0),
                                    Pair("input_len", 150.5), Pair("output_len", 7.0)));
}

}  // namespace
}  // namespace prolong::evaluator::metrics
