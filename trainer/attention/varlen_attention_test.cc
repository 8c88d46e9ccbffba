// Attention through varlen kernel calls (varlen_attention.h) with the blockwise kernel, against
// the blockwise attention with the true layouts: one process's packed sequence, a
// context-parallel rank against all ranks' keys gathered with padding rows, and against each
// rank's block as the ring scheme holds it, its parts merged (outputs, log-sum-exp and
// gradients of q, k and v within 1e-5 in float32). What differs on a GPU is only the kernel.

#include "trainer/attention/varlen_attention.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/attention/varlen_plan.h"

namespace prolong::attention {
namespace {

using torch::Tensor;

constexpr int64_t kTokens = 157;
constexpr double kScale = 0.35;

struct Sequence {
  Tensor q, k, v;  // [T, 4, 8] and [T, 2, 8]: grouped-query attention
  TokenLayout layout;
};

// Documents of 1 to 60 tokens packed into kTokens, random q, k, v.
Sequence RandomSequence(uint64_t seed) {
  std::mt19937 random(seed);
  std::uniform_int_distribution<int64_t> length(1, 60);
  std::vector<int64_t> document, position;
  for (int64_t d = 0; static_cast<int64_t>(document.size()) < kTokens; ++d) {
    const int64_t n = std::min<int64_t>(length(random), kTokens - document.size());
    for (int64_t p = 0; p < n; ++p) {
      document.push_back(d);
      position.push_back(static_cast<int64_t>(document.size()) - 1);
    }
  }
  torch::manual_seed(seed);
  return {torch::randn({kTokens, 4, 8}),
          torch::randn({kTokens, 2, 8}),
          torch::randn({kTokens, 2, 8}),
          {torch::tensor(document, torch::kInt64), torch::tensor(position, torch::kInt64)}};
}

// Rank r of C holds chunks r and 2C-1-r of 2C.
Tensor RankRows(int64_t rank, int64_t ranks) {
  auto chunk = [&](int64_t c) {
    return torch::arange(c * kTokens / (2 * ranks), (c + 1) * kTokens / (2 * ranks));
  };
  return torch::cat({chunk(rank), chunk(2 * ranks - 1 - rank)});
}

TokenLayout Rows(const TokenLayout& layout, const Tensor& rows) {
  return {layout.document.index_select(0, rows), layout.position.index_select(0, rows)};
}

std::vector<int64_t> Values(const Tensor& t) {
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

VarlenPlan Plan(const TokenLayout& q, const TokenLayout& k) {
  std::optional<VarlenPlan> plan = PlanVarlenAttention(Values(q.document), Values(q.position),
                                                       Values(k.document), Values(k.position));
  EXPECT_TRUE(plan.has_value());
  return plan.value_or(VarlenPlan{});
}

void ExpectClose(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  // -inf log-sum-exp rows must match exactly.
  ASSERT_TRUE(torch::equal(actual.isneginf(), expected.isneginf())) << what;
  const Tensor a = actual.masked_fill(actual.isneginf(), 0);
  const Tensor e = expected.masked_fill(expected.isneginf(), 0);
  EXPECT_TRUE(torch::allclose(a, e, 1e-5, 1e-6))
      << what << ": largest difference " << (a - e).abs().max().item<double>();
}

// Planned forward and backward against the blockwise ones for q (laid out by q_layout) and the
// keys (k_layout), with the final out and lse the blockwise forward's.
void ExpectPlannedIsBlockwise(const Tensor& q, const Tensor& k, const Tensor& v,
                              const TokenLayout& q_layout, const TokenLayout& k_layout) {
  const auto kernel = BlockwiseVarlenKernel();
  const VarlenPlan plan = Plan(q_layout, k_layout);
  const AttentionResult expected = BlockwiseAttentionForward(q, k, v, q_layout, k_layout, kScale);
  const AttentionResult got = PlannedAttentionForward(q, k, v, plan, kScale, *kernel);
  ExpectClose(got.out, expected.out, "out");
  ExpectClose(got.lse, expected.lse, "lse");
  const Tensor dout = torch::randn_like(q);
  const AttentionGrads want = BlockwiseAttentionBackward(dout, q, k, v, expected.out, expected.lse,
                                                         q_layout, k_layout, kScale);
  const AttentionGrads grads =
      PlannedAttentionBackward(dout, q, k, v, expected.out, expected.lse, plan, kScale, *kernel);
  ExpectClose(grads.dq, want.dq, "dq");
  ExpectClose(grads.dk, want.dk, "dk");
  ExpectClose(grads.dv, want.dv, "dv");
}

TEST(VarlenAttentionTest, OneProcessSequence) {
  for (uint64_t seed : {1, 2, 3}) {
    const Sequence s = RandomSequence(seed);
    ExpectPlannedIsBlockwise(s.q, s.k, s.v, s.layout, s.layout);
  }
}

TEST(VarlenAttentionTest, GatheredKeysWithPaddingRows) {
  for (int64_t ranks : {2, 4}) {
    const Sequence s = RandomSequence(10 + ranks);
    // Every rank's keys in rank order, each followed by three padding rows (document -1).
    std::vector<Tensor> k, v, document, position;
    for (int64_t r = 0; r < ranks; ++r) {
      const Tensor rows = RankRows(r, ranks);
      k.insert(k.end(), {s.k.index_select(0, rows), torch::randn({3, 2, 8})});
      v.insert(v.end(), {s.v.index_select(0, rows), torch::randn({3, 2, 8})});
      document.insert(document.end(),
                      {s.layout.document.index_select(0, rows), torch::full({3}, -1L)});
      position.insert(position.end(),
                      {s.layout.position.index_select(0, rows), torch::zeros({3}, torch::kInt64)});
    }
    const TokenLayout keys{torch::cat(document), torch::cat(position)};
    for (int64_t r = 0; r < ranks; ++r) {
      SCOPED_TRACE(testing::Message() << "rank " << r << " of " << ranks);
      const Tensor rows = RankRows(r, ranks);
      ExpectPlannedIsBlockwise(s.q.index_select(0, rows), torch::cat(k), torch::cat(v),
                               Rows(s.layout, rows), keys);
    }
  }
}

// The ring scheme's parts: each rank's queries against every rank's block, merged, are the
// attention over the whole sequence; each block's backward with the merged out and lse, its
// key gradients summed over the ranks, gives the whole sequence's gradients.
TEST(VarlenAttentionTest, RingBlocksMergeToTheWholeAttention) {
  const auto partial = VarlenPartialAttention(BlockwiseVarlenKernel());
  for (int64_t ranks : {2, 4}) {
    const Sequence s = RandomSequence(20 + ranks);
    const AttentionResult whole =
        BlockwiseAttentionForward(s.q, s.k, s.v, s.layout, s.layout, kScale);
    const Tensor dout = torch::randn_like(s.q);
    const AttentionGrads want = BlockwiseAttentionBackward(dout, s.q, s.k, s.v, whole.out,
                                                           whole.lse, s.layout, s.layout, kScale);
    Tensor dk = torch::zeros_like(s.k), dv = torch::zeros_like(s.v);
    for (int64_t r = 0; r < ranks; ++r) {
      SCOPED_TRACE(testing::Message() << "rank " << r << " of " << ranks);
      const Tensor rows = RankRows(r, ranks);
      const Tensor q = s.q.index_select(0, rows);
      const TokenLayout q_layout = Rows(s.layout, rows);
      std::optional<AttentionResult> merged;
      for (int64_t owner = 0; owner < ranks; ++owner) {
        const Tensor block = RankRows(owner, ranks);
        const AttentionResult part =
            partial->Forward(q, s.k.index_select(0, block), s.v.index_select(0, block), q_layout,
                             Rows(s.layout, block), kScale);
        merged = merged ? MergePartialAttention(*merged, part) : part;
      }
      ExpectClose(merged->out, whole.out.index_select(0, rows), "merged out");
      ExpectClose(merged->lse, whole.lse.index_select(1, rows), "merged lse");
      Tensor dq = torch::zeros_like(q);
      for (int64_t owner = 0; owner < ranks; ++owner) {
        const Tensor block = RankRows(owner, ranks);
        const AttentionGrads g = partial->Backward(
            dout.index_select(0, rows), q, s.k.index_select(0, block), s.v.index_select(0, block),
            merged->out, merged->lse, q_layout, Rows(s.layout, block), kScale);
        dq += g.dq;
        dk.index_add_(0, block, g.dk);
        dv.index_add_(0, block, g.dv);
      }
      ExpectClose(dq, want.dq.index_select(0, rows), "dq");
    }
    ExpectClose(dk, want.dk, "dk");
    ExpectClose(dv, want.dv, "dv");
  }
}

// AttendKeys over the varlen partial attention against DocumentMaskedAttention, by autograd.
TEST(VarlenAttentionTest, AttendKeysGradientsMatchTheBlockwiseAttention) {
  const auto partial = VarlenPartialAttention(BlockwiseVarlenKernel());
  const Sequence s = RandomSequence(5);
  std::vector<Tensor> grads[2];
  for (int run = 0; run < 2; ++run) {
    const Tensor q = s.q.clone().requires_grad_(), k = s.k.clone().requires_grad_(),
                 v = s.v.clone().requires_grad_();
    const Tensor out = run == 0 ? DocumentMaskedAttention(q, k, v, s.layout, s.layout, kScale)
                                : AttendKeys(q, k, v, s.layout, s.layout, kScale, *partial);
    (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
    grads[run] = {out.detach(), q.grad(), k.grad(), v.grad()};
  }
  const char* names[] = {"out", "dq", "dk", "dv"};
  for (int i = 0; i < 4; ++i) ExpectClose(grads[1][i], grads[0][i], names[i]);
}

// The plan kept for the latest layouts is not used once a layout tensor has changed in place.
TEST(VarlenAttentionTest, ALayoutChangedInPlaceIsPlannedAgain) {
  const auto partial = VarlenPartialAttention(BlockwiseVarlenKernel());
  const Sequence s = RandomSequence(6);
  TokenLayout layout{s.layout.document.clone(), s.layout.position.clone()};
  const Tensor before = partial->Forward(s.q, s.k, s.v, layout, layout, kScale).out;
  ExpectClose(before, BlockwiseAttentionForward(s.q, s.k, s.v, layout, layout, kScale).out,
              "before");
  layout.document.fill_(0);  // one document
  const Tensor after = partial->Forward(s.q, s.k, s.v, layout, layout, kScale).out;
  ExpectClose(after, BlockwiseAttentionForward(s.q, s.k, s.v, layout, layout, kScale).out, "after");
}

}  // namespace
}  // namespace prolong::attention
