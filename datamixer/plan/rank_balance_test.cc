#include "datamixer/plan/rank_balance.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::plan {
namespace {

using ::prolong::testing::StatusIs;
using Layout = std::vector<std::vector<int64_t>>;

// The layout, or none (and a failure) on an error.
Layout Balanced(absl::Span<const double> costs, int dp_size, int64_t micro_batch_sequences) {
  absl::StatusOr<Layout> layout = BalanceDataParallel(costs, dp_size, micro_batch_sequences);
  EXPECT_OK(layout);
  return layout.ok() ? *std::move(layout) : Layout();
}

// Costs of packed sequences of seq_len tokens as a plan holds them, largest first: integers (sums
// of squared lengths), so that sums are exact and comparisons need no tolerance.
std::vector<double> SortedCosts(std::vector<double> costs) {
  std::sort(costs.begin(), costs.end(), std::greater<double>());
  return costs;
}

// A sequence packed from documents of random lengths (log-uniform, 1 to seq_len).
double PackedCost(std::mt19937_64& rng, int64_t seq_len) {
  double cost = 0;
  for (int64_t left = seq_len; left > 0;) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    const int64_t length = std::min<int64_t>(
        left,
        std::max<int64_t>(1, static_cast<int64_t>(std::pow(static_cast<double>(seq_len), u))));
    cost += static_cast<double>(length * length);
    left -= length;
  }
  return cost;
}

// Batches of 24 sequences of 256 tokens: all packed, or a share of whole-document sequences
// (cost 256^2) with the rest packed, as ProLong's long and short domains mix.
std::vector<std::vector<double>> RandomBatches(int count) {
  std::mt19937_64 rng(5);
  std::vector<std::vector<double>> batches;
  for (int b = 0; b < count; ++b) {
    const int whole = static_cast<int>(rng() % 25);
    std::vector<double> costs;
    for (int j = 0; j < 24; ++j) costs.push_back(j < whole ? 256.0 * 256 : PackedCost(rng, 256));
    batches.push_back(SortedCosts(costs));
  }
  return batches;
}

TEST(RankBalanceTest, EveryRankGetsAnEqualShareAndTogetherTheWholeBatch) {
  for (const std::vector<double>& costs : RandomBatches(20)) {
    for (int dp_size : {1, 2, 3, 4, 8}) {
      for (int64_t micro : {0, 1, 2, 3, 5}) {
        SCOPED_TRACE(::testing::Message() << "dp " << dp_size << " micro-batch " << micro);
        ASSERT_OK_AND_ASSIGN(const Layout layout, BalanceDataParallel(costs, dp_size, micro));
        ASSERT_EQ(layout.size(), static_cast<size_t>(dp_size));
        std::vector<int64_t> all;
        for (const std::vector<int64_t>& positions : layout) {
          EXPECT_EQ(positions.size(), 24u / dp_size);
          all.insert(all.end(), positions.begin(), positions.end());
        }
        std::sort(all.begin(), all.end());
        std::vector<int64_t> batch(24);
        std::iota(batch.begin(), batch.end(), 0);
        EXPECT_EQ(all, batch) << "each sequence exactly once";
      }
    }
  }
}

TEST(RankBalanceTest, TheRuleOnAHandWorkedBatch) {
  // Positions by cost: 1 (9), 4 (7), 3 (6), 0 (5), 5 (3), 2 (2); rounds {1, 4} {3, 0} {5, 2}.
  const std::vector<double> costs = {5, 9, 2, 6, 7, 3};
  // Loads over the whole step: 9 | 7, then rank 1 (7) takes 6 and rank 0 (9) takes 5: 14 | 13,
  // then rank 1 takes 3 and rank 0 takes 2: 16 | 16.
  EXPECT_EQ(Balanced(costs, 2, 0), (Layout{{1, 0, 2}, {4, 3, 5}}));
  // Micro-steps of one sequence: loads restart every round, the lower rank takes the heavier.
  EXPECT_EQ(Balanced(costs, 2, 1), (Layout{{1, 3, 5}, {4, 0, 2}}));
  // Two rounds, then a last micro-step of one.
  EXPECT_EQ(Balanced(costs, 2, 2), (Layout{{1, 0, 5}, {4, 3, 2}}));
  // Equal costs keep batch order: rank r takes r, r + D, r + 2D, ...
  EXPECT_EQ(Balanced(std::vector<double>(6, 4.0), 3, 0), (Layout{{0, 3}, {1, 4}, {2, 5}}));
  EXPECT_EQ(Balanced(costs, 1, 0), (Layout{{1, 4, 3, 0, 5, 2}}));
}

TEST(RankBalanceTest, EachRankAsksForItsOwnShareAndContextParallelRanksShareIt) {
  const std::vector<double> costs = RandomBatches(1)[0];
  for (int64_t micro : {0, 2}) {
    ASSERT_OK_AND_ASSIGN(const Layout layout, BalanceDataParallel(costs, 4, micro));
    ASSERT_OK_AND_ASSIGN(const Layout again, BalanceDataParallel(costs, 4, micro));
    EXPECT_EQ(layout, again);
    for (int dp = 0; dp < 4; ++dp) {
      for (int cp = 0; cp < 2; ++cp) {
        ASSERT_OK_AND_ASSIGN(const std::vector<int64_t> positions,
                             DataParallelSequences(costs, {dp, 4, cp, 2, micro}));
        EXPECT_EQ(positions, layout[dp]) << "dp " << dp << " cp " << cp;
      }
    }
  }
}

// Micro-step i of every rank waits for the slowest: the balanced step is never slower than the
// contiguous one at any micro-batch size, whether the layout knew that size or not.
TEST(RankBalanceTest, NeverMoreImbalancedThanContiguousSlices) {
  for (const std::vector<double>& costs : RandomBatches(200)) {
    for (int dp_size : {2, 3, 4, 8}) {
      for (int64_t micro : {0, 1, 2, 3}) {
        SCOPED_TRACE(::testing::Message() << "dp " << dp_size << " micro-batch " << micro);
        const double contiguous = StepImbalance(costs, ContiguousDataParallel(24, dp_size), micro);
        for (int64_t layout_micro : {micro, int64_t{0}}) {
          ASSERT_OK_AND_ASSIGN(const Layout layout,
                               BalanceDataParallel(costs, dp_size, layout_micro));
          EXPECT_LE(StepImbalance(costs, layout, micro), contiguous)
              << "layout for micro-batch " << layout_micro;
        }
      }
    }
  }
}

TEST(RankBalanceTest, AProlongShapedBatchBecomesEven) {
  // 64 sequences of 64 tokens: 40 one-document chunks (64^2) then 24 of eight 8-token documents
  // (8 * 8^2), on 8 ranks, one sequence a micro-step. Contiguous: ranks 0 to 4 do only chunks and
  // every micro-step waits for one, 4096 against a mean of (5 * 4096 + 3 * 512) / 8 = 2752.
  std::vector<double> costs(40, 64.0 * 64);
  costs.resize(64, 8 * 8.0 * 8);
  EXPECT_DOUBLE_EQ(StepImbalance(costs, ContiguousDataParallel(64, 8), 1), 4096.0 / 2752);
  // Balanced: every micro-step holds eight equal sequences.
  for (int64_t layout_micro : {0, 1}) {
    ASSERT_OK_AND_ASSIGN(const Layout layout, BalanceDataParallel(costs, 8, layout_micro));
    EXPECT_DOUBLE_EQ(StepImbalance(costs, layout, 1), 1.0);
  }
}

TEST(RankBalanceTest, SkewedBatchesAreStrictlyBetterBalanced) {
  // With more than 20 whole-document sequences of 24, every layout on 4 ranks has a rank with two
  // of them in every micro-step of two: contiguous slices are optimal already.
  int skewed = 0;
  for (const std::vector<double>& batch : RandomBatches(100)) {
    if (std::count(batch.begin(), batch.end(), 256.0 * 256) > 20) continue;
    ++skewed;
    const double before = StepImbalance(batch, ContiguousDataParallel(24, 4), 2);
    EXPECT_LT(StepImbalance(batch, Balanced(batch, 4, 2), 2), before);
    EXPECT_LT(StepImbalance(batch, Balanced(batch, 4, 0), 2), before)
        << "a layout that was not told the micro-batch size";
  }
  EXPECT_GT(skewed, 50);
}

// Within a micro-step whose loads restart with it, ranks differ by at most the widest cost gap
// within one of its rounds; with loads running over the step, by at most twice that.
TEST(RankBalanceTest, RanksDifferByAtMostTheWidestGapWithinARound) {
  for (const std::vector<double>& costs : RandomBatches(100)) {
    for (int dp_size : {2, 4, 8}) {
      const int64_t rounds = 24 / dp_size;
      for (int64_t micro : {1, 2, 3}) {
        for (int64_t layout_micro : {micro, int64_t{0}}) {
          ASSERT_OK_AND_ASSIGN(const Layout layout,
                               BalanceDataParallel(costs, dp_size, layout_micro));
          for (int64_t begin = 0; begin < rounds; begin += micro) {
            const int64_t end = std::min(rounds, begin + micro);
            double widest_gap = 0;
            for (int64_t round = 0; round < end; ++round) {
              // Rounds before this micro-step count when loads run over the step.
              if (round < begin && layout_micro != 0) continue;
              widest_gap =
                  std::max(widest_gap, costs[round * dp_size] - costs[(round + 1) * dp_size - 1]);
            }
            double low = INFINITY, high = 0;
            for (const std::vector<int64_t>& positions : layout) {
              double load = 0;
              for (int64_t i = begin; i < end; ++i) load += costs[positions[i]];
              low = std::min(low, load);
              high = std::max(high, load);
            }
            EXPECT_LE(high - low, (layout_micro == 0 ? 2 : 1) * widest_gap)
                << "dp " << dp_size << " micro-batch " << micro << " layout for " << layout_micro
                << ", micro-step " << begin / micro;
          }
        }
      }
    }
  }
}

TEST(RankBalanceTest, ImbalanceIsTheSlowestRankOverTheMeanSummedOverMicroSteps) {
  // Ranks {0, 1} and {2, 3}: micro-steps (8 | 4) and (1 | 3).
  const std::vector<double> costs = {8, 1, 4, 3};
  EXPECT_DOUBLE_EQ(StepImbalance(costs, {{0, 1}, {2, 3}}, 1), (8.0 + 3.0) / (6.0 + 2.0));
  // One micro-step of the whole share: 9 | 7.
  EXPECT_DOUBLE_EQ(StepImbalance(costs, {{0, 1}, {2, 3}}, 0), 9.0 / 8.0);
  // A last micro-step shorter than the others: (8 + 1 | 4 + 3), then nothing.
  EXPECT_DOUBLE_EQ(StepImbalance(costs, {{0, 1}, {2, 3}}, 3), 9.0 / 8.0);
  EXPECT_DOUBLE_EQ(StepImbalance(std::vector<double>(4, 0.0), {{0, 1}, {2, 3}}, 1), 1.0)
      << "no work is even work";
}

TEST(RankBalanceTest, ABatchTheRanksDoNotDivideAndBadInputsNameTheField) {
  const std::vector<double> costs(8, 1.0);
  EXPECT_THAT(BalanceDataParallel(costs, 3, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank.dp_size: must divide the 8 sequences of a global batch, got 3"));
  EXPECT_THAT(DataParallelSequences(costs, {0, 3, 0, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank.dp_size: must divide the 8 sequences of a global batch, got 3"));
  EXPECT_THAT(
      BalanceDataParallel(costs, 0, 0),
      StatusIs(absl::StatusCode::kInvalidArgument, "rank.dp_size: must be at least 1, got 0"));
  EXPECT_THAT(BalanceDataParallel(costs, 2, -1),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rank.micro_batch_sequences: must not be negative, got -1"));
  EXPECT_THAT(
      DataParallelSequences(costs, {2, 2, 0, 1}),
      StatusIs(absl::StatusCode::kInvalidArgument, "rank.dp_rank: must be in [0, 2), got 2"));
  EXPECT_THAT(BalanceDataParallel({1, NAN, 2, 3}, 2, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "costs[1]: must be finite and not negative, got nan"));
  EXPECT_THAT(BalanceDataParallel({1, 2, -3, 3}, 2, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "costs[2]: must be finite and not negative, got -3"));
  EXPECT_EQ(Balanced({}, 4, 1), Layout(4)) << "an empty batch: nothing for anyone";
}

}  // namespace
}  // namespace prolong::plan
