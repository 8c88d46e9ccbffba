#include "trainer/attention/varlen_plan.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace prolong::attention {
namespace {

struct Layout {
  std::vector<int64_t> document, position;
  void Add(int64_t d, int64_t p) {
    document.push_back(d);
    position.push_back(p);
  }
};

// A packed sequence of documents of random lengths (some shorter than a chunk, some spanning
// chunks and ranks).
Layout RandomSequence(int64_t tokens, std::mt19937& random) {
  Layout sequence;
  std::uniform_int_distribution<int64_t> length(1, tokens / 3);
  for (int64_t document = 0; static_cast<int64_t>(sequence.document.size()) < tokens; ++document) {
    const int64_t n = std::min<int64_t>(length(random), tokens - sequence.document.size());
    for (int64_t p = 0; p < n; ++p) sequence.Add(document, p);
  }
  return sequence;
}

// Rank r of C holds chunks r and 2C-1-r of the sequence (the datamixer's zigzag layout).
Layout RankTokens(const Layout& sequence, int64_t rank, int64_t ranks) {
  const int64_t chunk = sequence.document.size() / (2 * ranks);
  Layout local;
  for (int64_t c : {rank, 2 * ranks - 1 - rank}) {
    for (int64_t i = c * chunk; i < (c + 1) * chunk; ++i) {
      local.Add(sequence.document[i], sequence.position[i]);
    }
  }
  return local;
}

// Every query-key pair the plan lets through, as a [queries][keys] matrix over the input keys.
// Causal entries align the mask bottom-right; non-causal ones let every pair through.
std::vector<std::vector<bool>> PlannedMask(const VarlenPlan& plan, int64_t queries, int64_t keys) {
  std::vector<std::vector<bool>> allowed(queries, std::vector<bool>(keys, false));
  std::vector<int> covered(queries, 0);
  for (const VarlenCall& call : plan.calls) {
    EXPECT_EQ(call.cu_q.size(), call.cu_k.size());
    for (size_t e = 0; e + 1 < call.cu_q.size(); ++e) {
      const int64_t lq = call.cu_q[e + 1] - call.cu_q[e], lk = call.cu_k[e + 1] - call.cu_k[e];
      EXPECT_LE(lq, call.max_q);
      EXPECT_LE(lk, call.max_k);
      for (int64_t r = 0; r < lq; ++r) {
        const int64_t query = call.q_begin + call.cu_q[e] + r;
        ++covered[query];
        for (int64_t c = 0; c < lk && (!call.causal || c <= r + lk - lq); ++c) {
          allowed[query][plan.key_order[call.k_begin + call.cu_k[e] + c]] = true;
        }
      }
    }
  }
  for (int64_t q = 0; q < queries; ++q) EXPECT_LE(covered[q], 1) << "query " << q;
  return allowed;
}

// The plan's mask is the document mask; returns the plan.
VarlenPlan ExpectPlanIsTheDocumentMask(const Layout& q, const Layout& k) {
  const std::optional<VarlenPlan> plan =
      PlanVarlenAttention(q.document, q.position, k.document, k.position);
  EXPECT_TRUE(plan.has_value());
  if (!plan.has_value()) return {};
  const auto allowed = PlannedMask(*plan, q.document.size(), k.document.size());
  for (size_t i = 0; i < q.document.size(); ++i) {
    for (size_t j = 0; j < k.document.size(); ++j) {
      const bool expected =
          k.document[j] >= 0 && k.document[j] == q.document[i] && k.position[j] <= q.position[i];
      EXPECT_EQ(allowed[i][j], expected) << "query " << i << ", key " << j;
      if (allowed[i][j] != expected) return *plan;
    }
  }
  return *plan;
}

TEST(PlanVarlenAttentionTest, OneProcessIsOneCallWithAnEntryPerDocument) {
  Layout sequence;
  for (int64_t p = 0; p < 5; ++p) sequence.Add(0, p);
  for (int64_t p = 0; p < 3; ++p) sequence.Add(1, p);
  const std::optional<VarlenPlan> plan = PlanVarlenAttention(sequence.document, sequence.position,
                                                             sequence.document, sequence.position);
  ASSERT_TRUE(plan.has_value());
  ASSERT_EQ(plan->calls.size(), 1u);
  EXPECT_EQ(plan->calls[0].cu_q, (std::vector<int64_t>{0, 5, 8}));
  EXPECT_EQ(plan->calls[0].cu_k, (std::vector<int64_t>{0, 5, 8}));
  EXPECT_EQ(plan->calls[0].max_q, 5);
  EXPECT_EQ(plan->key_order, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  ExpectPlanIsTheDocumentMask(sequence, sequence);
}

TEST(PlanVarlenAttentionTest, AllGatheredKeysOfEveryRankGiveTheDocumentMask) {
  std::mt19937 random(7);
  for (int64_t ranks : {2, 4}) {
    for (int trial = 0; trial < 20; ++trial) {
      const Layout sequence = RandomSequence(16 * ranks, random);
      // The keys as the all-gather scheme holds them: rank by rank, each padded by two rows.
      Layout gathered;
      for (int64_t r = 0; r < ranks; ++r) {
        const Layout local = RankTokens(sequence, r, ranks);
        for (size_t i = 0; i < local.document.size(); ++i) {
          gathered.Add(local.document[i], local.position[i]);
        }
        gathered.Add(-1, 0);
        gathered.Add(-1, 0);
      }
      for (int64_t r = 0; r < ranks; ++r) {
        SCOPED_TRACE(testing::Message() << ranks << " ranks, trial " << trial << ", rank " << r);
        ExpectPlanIsTheDocumentMask(RankTokens(sequence, r, ranks), gathered);
      }
    }
  }
}

TEST(PlanVarlenAttentionTest, EveryRingBlockGivesTheDocumentMask) {
  std::mt19937 random(11);
  for (int64_t ranks : {2, 4}) {
    for (int trial = 0; trial < 20; ++trial) {
      const Layout sequence = RandomSequence(16 * ranks, random);
      for (int64_t r = 0; r < ranks; ++r) {
        for (int64_t owner = 0; owner < ranks; ++owner) {
          SCOPED_TRACE(testing::Message() << ranks << " ranks, trial " << trial << ", rank " << r
                                          << ", block of rank " << owner);
          const VarlenPlan plan = ExpectPlanIsTheDocumentMask(RankTokens(sequence, r, ranks),
                                                              RankTokens(sequence, owner, ranks));
          // A rank's own block holds each query's own tokens; another's precede them or follow.
          for (const VarlenCall& call : plan.calls) EXPECT_EQ(call.causal, owner == r);
        }
      }
    }
  }
}

TEST(PlanVarlenAttentionTest, KeysBeforeTheQueriesAreOneNonCausalEntry) {
  Layout sequence;
  for (int64_t p = 0; p < 8; ++p) sequence.Add(0, p);
  // The first rank's keys (chunks 0 and 3 of 4) for the second rank's queries (chunks 1 and 2):
  // positions 0-1 precede all of them, 6-7 follow.
  const Layout block = RankTokens(sequence, 0, 2);
  const Layout queries = RankTokens(sequence, 1, 2);
  const VarlenPlan plan = ExpectPlanIsTheDocumentMask(queries, block);
  ASSERT_EQ(plan.calls.size(), 1u);
  EXPECT_FALSE(plan.calls[0].causal);
  EXPECT_EQ(plan.calls[0].cu_q, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(plan.calls[0].cu_k, (std::vector<int64_t>{0, 2}));
  // And the other way round the first rank's chunk 0 sees nothing, chunk 3 sees positions 2-5.
  const VarlenPlan back = ExpectPlanIsTheDocumentMask(block, queries);
  ASSERT_EQ(back.calls.size(), 1u);
  EXPECT_EQ(back.calls[0].q_begin, 2);
  EXPECT_EQ(back.calls[0].cu_k, (std::vector<int64_t>{0, 4}));
}

TEST(PlanVarlenAttentionTest, OwnKeysInPartOrRepeatedHaveNoPlan) {
  Layout sequence;
  for (int64_t p = 0; p < 8; ++p) sequence.Add(0, p);
  Layout half;
  for (int64_t p = 0; p < 4; ++p) half.Add(0, p);
  EXPECT_FALSE(
      PlanVarlenAttention(sequence.document, sequence.position, half.document, half.position)
          .has_value());
  // A key before the queries, twice.
  Layout tail;
  for (int64_t p = 4; p < 8; ++p) tail.Add(0, p);
  Layout repeated = sequence;
  repeated.Add(0, 1);
  EXPECT_FALSE(
      PlanVarlenAttention(tail.document, tail.position, repeated.document, repeated.position)
          .has_value());
}

}  // namespace
}  // namespace prolong::attention
