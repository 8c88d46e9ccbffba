#include "datamixer/plan/rank_layout.h"

#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::plan {
namespace {

TEST(RankLayoutTest, ZigzagChunksBalanceCausalWork) {
  // T = 10, C = 2: chunks [0,2) [2,5) [5,7) [7,10).
  EXPECT_EQ(ContextParallelSpans(10, {0, 1, 0, 2}), (std::vector<Range>{{0, 2}, {7, 10}}));
  EXPECT_EQ(ContextParallelSpans(10, {0, 1, 1, 2}), (std::vector<Range>{{2, 5}, {5, 7}}));
  EXPECT_EQ(ContextParallelSpans(10, {0, 1, 0, 1}), (std::vector<Range>{{0, 10}}));
  // Fewer tokens than chunks: empty chunks are left out.
  // T = 3, C = 4: chunk bounds 0 0 0 1 1 1 2 2 3.
  EXPECT_EQ(ContextParallelSpans(3, {0, 1, 0, 4}), (std::vector<Range>{{2, 3}}));
  EXPECT_EQ(ContextParallelSpans(3, {0, 1, 1, 4}), (std::vector<Range>{}));
}

TEST(RankLayoutTest, EveryTokenBelongsToExactlyOneCpRankAndWorkIsBalanced) {
  for (int64_t seq_len : {2, 7, 64, 1000, 65537}) {
    for (int cp_size : {1, 2, 3, 4, 8}) {
      std::vector<int> owner(seq_len, 0);
      std::vector<double> work;
      for (int c = 0; c < cp_size; ++c) {
        double rank_work = 0;
        int64_t previous_end = -1;
        for (const Range& span : ContextParallelSpans(seq_len, {0, 1, c, cp_size})) {
          EXPECT_GT(span.size(), 0);
          EXPECT_GT(span.begin, previous_end - 1) << "spans come in sequence order";
          previous_end = span.end;
          for (int64_t i = span.begin; i < span.end; ++i) {
            ++owner[i];
            rank_work += static_cast<double>(i + 1);  // Keys a causal query attends.
          }
        }
        work.push_back(rank_work);
      }
      for (int64_t i = 0; i < seq_len; ++i) {
        ASSERT_EQ(owner[i], 1) << "token " << i << " of " << seq_len << ", C=" << cp_size;
      }
      if (seq_len > 65536) {
        for (double w : work) EXPECT_NEAR(w / work[0], 1.0, 1e-3) << "C=" << cp_size;
      }
    }
  }
}

TEST(RankLayoutTest, DataParallelSlicesAreContiguousAndDisjoint) {
  EXPECT_EQ(DataParallelSlice(8, {0, 4, 0, 1}), (Range{0, 2}));
  EXPECT_EQ(DataParallelSlice(8, {3, 4, 0, 1}), (Range{6, 8}));
  EXPECT_EQ(DataParallelSlice(8, {0, 1, 0, 1}), (Range{0, 8}));
}

TEST(RankLayoutTest, BadRanksNameTheField) {
  EXPECT_EQ(ValidateRank({0, 0, 0, 1}, 8).message(), "rank.dp_size: must be at least 1, got 0");
  EXPECT_EQ(ValidateRank({0, 1, 0, 0}, 8).message(), "rank.cp_size: must be at least 1, got 0");
  EXPECT_EQ(ValidateRank({2, 2, 0, 1}, 8).message(), "rank.dp_rank: must be in [0, 2), got 2");
  EXPECT_EQ(ValidateRank({0, 1, -1, 2}, 8).message(), "rank.cp_rank: must be in [0, 2), got -1");
  EXPECT_EQ(ValidateRank({0, 3, 0, 1}, 8).message(),
            "rank.dp_size: must divide the 8 sequences of a global batch, got 3");
  EXPECT_EQ(ValidateRank({0, 1, 0, 1, -2}, 8).message(),
            "rank.micro_batch_sequences: must not be negative, got -2");
  EXPECT_OK(ValidateRank({1, 4, 3, 4}, 8));
  EXPECT_OK(ValidateRank({1, 4, 3, 4, 3}, 8)) << "a micro-batch size need not divide a share";
}

}  // namespace
}  // namespace prolong::plan
