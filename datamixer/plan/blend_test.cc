#include "datamixer/plan/blend.h"

#include <cmath>
#include <numeric>
#include <random>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::plan {
namespace {

using ::prolong::testing::StatusIs;

TEST(BlendTest, EveryBatchHoldsItsShareAndRunningTotalsStayWithinOne) {
  std::mt19937 rng(3);
  for (int round = 0; round < 200; ++round) {
    const int domains = std::uniform_int_distribution<int>(1, 9)(rng);
    std::vector<double> proportions(domains);
    for (double& p : proportions) p = std::uniform_real_distribution<double>(0.01, 1)(rng);
    const double sum = std::accumulate(proportions.begin(), proportions.end(), 0.0);
    for (double& p : proportions) p /= sum;
    const int64_t batch = std::uniform_int_distribution<int64_t>(1, 300)(rng);
    absl::StatusOr<Blend> blend = Blend::Create(proportions, batch);
    ASSERT_OK(blend);
    std::vector<int64_t> totals(domains, 0);
    for (int64_t step = 1; step <= 500; ++step) {
      const std::vector<int64_t> counts = blend->Next();
      ASSERT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), batch);
      for (int i = 0; i < domains; ++i) {
        const double share = proportions[i] * static_cast<double>(batch);
        ASSERT_GE(counts[i], static_cast<int64_t>(std::floor(share + 1e-9)));
        ASSERT_LE(counts[i], static_cast<int64_t>(std::floor(share + 1e-9)) + 1);
        totals[i] += counts[i];
        ASSERT_LT(std::abs(static_cast<double>(totals[i]) - share * static_cast<double>(step)),
                  1.0 + 1e-6)
            << "domain " << i << " after " << step << " batches";
      }
    }
    EXPECT_EQ(blend->steps(), 500);
  }
}

TEST(BlendTest, RemaindersRotateAcrossBatches) {
  // Half and half of 3: 2+1, then 1+2, ... never always 2+1.
  absl::StatusOr<Blend> blend = Blend::Create({0.5, 0.5}, 3);
  ASSERT_OK(blend);
  EXPECT_EQ(blend->Next(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(blend->Next(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(blend->Next(), (std::vector<int64_t>{2, 1}));
  // ProLong's stage-1 mixture over a 64-sequence batch: 30% code, 30% books, 3% textbooks,
  // 37% ShortMix.
  blend = Blend::Create({0.30, 0.30, 0.03, 0.37}, 64);
  ASSERT_OK(blend);
  std::vector<int64_t> totals(4, 0);
  for (int step = 0; step < 100; ++step) {
    const std::vector<int64_t> counts = blend->Next();
    for (int i = 0; i < 4; ++i) totals[i] += counts[i];
  }
  EXPECT_EQ(totals, (std::vector<int64_t>{1920, 1920, 192, 2368}));  // Exactly p * 6400.
}

TEST(BlendTest, BadMixturesNameTheField) {
  EXPECT_EQ(Blend::Create({0.5, 0.4}, 8).status().message(),
            "mixture: proportions sum to 0.9, not 1 (within 1e-6)");
  EXPECT_EQ(Blend::Create({1.5, -0.5}, 8).status().message(),
            "mixture[0].proportion: must be in (0, 1], got 1.5");
  EXPECT_EQ(Blend::Create({0.5, 0.5}, 0).status().message(),
            "batch_sequences: must be at least 1, got 0");
  EXPECT_THAT(Blend::Create({}, 8), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_OK(Blend::Create({0.3333333, 0.3333333, 0.3333334}, 8));
}

}  // namespace
}  // namespace prolong::plan
