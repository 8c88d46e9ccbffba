#include "trainer/attention/blockwise_attention.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace prolong::attention {
namespace {

using torch::Tensor;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// A packed sequence: document d occupies `lengths[d]` consecutive tokens.
TokenLayout PackedLayout(const std::vector<int64_t>& lengths) {
  std::vector<int64_t> document;
  for (size_t d = 0; d < lengths.size(); ++d) document.insert(document.end(), lengths[d], d);
  const int64_t total = document.size();
  return {torch::tensor(document, torch::kLong), torch::arange(total, torch::kLong)};
}

// Documents of length 1, shorter than a block and longer than a block, in random order, with a
// total that is not a multiple of the block size.
std::vector<int64_t> RandomDocumentLengths(std::mt19937& rng, int64_t block_size,
                                           int64_t min_total) {
  std::vector<int64_t> lengths = {1, block_size + 3, 1};
  std::uniform_int_distribution<int> kind(0, 2);
  std::uniform_int_distribution<int64_t> shorter(2, std::max<int64_t>(2, block_size - 1));
  std::uniform_int_distribution<int64_t> longer(block_size + 1, 3 * block_size);
  int64_t total = 0;
  for (int64_t length : lengths) total += length;
  while (total < min_total) {
    const int k = kind(rng);
    const int64_t length = k == 0 ? 1 : k == 1 ? shorter(rng) : longer(rng);
    lengths.push_back(length);
    total += length;
  }
  std::shuffle(lengths.begin(), lengths.end(), rng);
  if (total % block_size == 0) lengths.push_back(1);
  return lengths;
}

TokenLayout SelectTokens(const TokenLayout& layout, const Tensor& index) {
  return {layout.document.index_select(0, index), layout.position.index_select(0, index)};
}

int64_t Length(const TokenLayout& layout) { return layout.document.size(0); }

// Plain attention with a materialized [Tq, Tk] mask, differentiable by autograd. Rows with no
// allowed key are given a finite dummy row and zeroed afterwards, so no NaN reaches autograd.
AttentionResult NaiveAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                               const TokenLayout& q_layout, const TokenLayout& k_layout,
                               double scale) {
  const int64_t groups = q.size(1) / k.size(1);
  const Tensor k_heads = k.repeat_interleave(groups, 1);
  const Tensor v_heads = v.repeat_interleave(groups, 1);
  const Tensor allowed = q_layout.document.unsqueeze(1).eq(k_layout.document.unsqueeze(0)) &
                         k_layout.position.unsqueeze(0).le(q_layout.position.unsqueeze(1));
  const Tensor has_key = allowed.any(1).unsqueeze(1);  // [Tq, 1]
  const Tensor scores = torch::einsum("qhd,khd->hqk", {q, k_heads}) * scale;
  const Tensor masked =
      scores.masked_fill(allowed.logical_not(), kNegInf).masked_fill(has_key.logical_not(), 0.0);
  const Tensor probs = torch::softmax(masked, -1) * has_key.to(q.scalar_type());
  const Tensor out = torch::einsum("hqk,khd->qhd", {probs, v_heads});
  const Tensor lse =
      torch::logsumexp(masked, -1).masked_fill(has_key.squeeze(1).logical_not(), kNegInf);
  return {out, lse};
}

// Elementwise |actual - expected| <= atol + rtol * |expected|, where atol is relative to the
// largest finite expected magnitude (at least 1): float32 cancellation, as in dS = P * (dP - D)
// for an element whose exact value is 0, leaves an error proportional to the operands rather
// than to the element. Infinities must match exactly. Reports the worst element.
::testing::AssertionResult AllClose(const Tensor& actual, const Tensor& expected,
                                    double rtol = 1e-5, double atol = 1e-6) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  const Tensor a = actual.detach().to(torch::kDouble).flatten();
  const Tensor e = expected.detach().to(torch::kDouble).flatten();
  if (e.numel() > 0) {
    atol *= std::max(
        1.0, e.masked_fill(torch::isfinite(e).logical_not(), 0.0).abs().max().item<double>());
  }
  const Tensor close = torch::isclose(a, e, rtol, atol);
  if (close.all().item<bool>()) return ::testing::AssertionSuccess();
  const Tensor excess = ((a - e).abs() - atol - rtol * e.abs())
                            .nan_to_num(std::numeric_limits<double>::infinity())
                            .masked_fill(close, kNegInf);
  const int64_t worst = excess.argmax().item<int64_t>();
  return ::testing::AssertionFailure()
         << close.logical_not().sum().item<int64_t>() << " of " << a.numel()
         << " elements differ; worst at flat index " << worst << ": " << a[worst].item<double>()
         << " vs expected " << e[worst].item<double>();
}

bool AllFinite(const Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

struct Inputs {
  Tensor q, k, v;
};

Inputs RandomInputs(int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t head_dim,
                    torch::Dtype dtype = torch::kFloat) {
  return {torch::randn({tq, hq, head_dim}).to(dtype), torch::randn({tk, hkv, head_dim}).to(dtype),
          torch::randn({tk, hkv, head_dim}).to(dtype)};
}

// Reference forward and gradients of sum(out * dout), in float64.
struct ReferenceRun {
  AttentionResult result;
  AttentionGrads grads;
};

ReferenceRun RunReference(const Inputs& in, const Tensor& dout, const TokenLayout& q_layout,
                          const TokenLayout& k_layout, double scale) {
  Tensor q = in.q.to(torch::kDouble).requires_grad_(true);
  Tensor k = in.k.to(torch::kDouble).requires_grad_(true);
  Tensor v = in.v.to(torch::kDouble).requires_grad_(true);
  AttentionResult result = NaiveAttention(q, k, v, q_layout, k_layout, scale);
  result.out.backward(dout.to(torch::kDouble));
  return {{result.out.detach(), result.lse.detach()}, {q.grad(), k.grad(), v.grad()}};
}

struct Shape {
  int64_t hq;
  int64_t hkv;
  int64_t block_size;
  int64_t min_tokens;
  uint32_t seed;
};

void PrintTo(const Shape& shape, std::ostream* os) {
  *os << "{Hq=" << shape.hq << ", Hkv=" << shape.hkv << ", block_size=" << shape.block_size
      << ", min_tokens=" << shape.min_tokens << ", seed=" << shape.seed << "}";
}

std::string ShapeName(const ::testing::TestParamInfo<Shape>& info) {
  std::ostringstream name;
  name << "Hq" << info.param.hq << "Hkv" << info.param.hkv << "Block" << info.param.block_size
       << "Seed" << info.param.seed;
  return name.str();
}

class BlockwiseAttentionReferenceTest : public ::testing::TestWithParam<Shape> {};

TEST_P(BlockwiseAttentionReferenceTest, ForwardAndBackwardMatchNaiveAttention) {
  const Shape shape = GetParam();
  torch::manual_seed(shape.seed);
  std::mt19937 rng(shape.seed);
  const TokenLayout layout =
      PackedLayout(RandomDocumentLengths(rng, shape.block_size, shape.min_tokens));
  const int64_t t = Length(layout);
  const int64_t head_dim = 16;
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const Inputs in = RandomInputs(t, t, shape.hq, shape.hkv, head_dim);
  const Tensor dout = torch::randn({t, shape.hq, head_dim});

  const AttentionResult result =
      BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout, std::nullopt, shape.block_size);
  const AttentionGrads grads =
      BlockwiseAttentionBackward(dout, in.q, in.k, in.v, result.out, result.lse, layout, layout,
                                 std::nullopt, shape.block_size);
  const ReferenceRun ref = RunReference(in, dout, layout, layout, scale);

  ASSERT_EQ(result.out.scalar_type(), torch::kFloat);
  ASSERT_EQ(result.lse.scalar_type(), torch::kFloat);
  EXPECT_TRUE(AllClose(result.out, ref.result.out)) << "out, T=" << t;
  EXPECT_TRUE(AllClose(result.lse, ref.result.lse)) << "lse, T=" << t;
  EXPECT_TRUE(AllClose(grads.dq, ref.grads.dq)) << "dq, T=" << t;
  EXPECT_TRUE(AllClose(grads.dk, ref.grads.dk)) << "dk, T=" << t;
  EXPECT_TRUE(AllClose(grads.dv, ref.grads.dv)) << "dv, T=" << t;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, BlockwiseAttentionReferenceTest,
    ::testing::Values(Shape{4, 2, 16, 150, 1},   // GQA
                      Shape{4, 2, 7, 120, 2},    // GQA, odd block
                      Shape{2, 2, 16, 150, 3},   // MHA
                      Shape{3, 3, 33, 200, 4},   // MHA, block larger than most documents
                      Shape{4, 1, 24, 150, 5},   // one kv head for all query heads
                      Shape{2, 1, 1, 40, 6},     // one token per block
                      Shape{2, 2, 64, 300, 7}),  // MHA, larger blocks
    ShapeName);

TEST(BlockwiseAttentionTest, CorrectWhenTokensAreNotInSequenceOrder) {
  // Block bounds are computed, never assumed, so any token order must give the same answer.
  torch::manual_seed(11);
  std::mt19937 rng(11);
  const TokenLayout layout = PackedLayout(RandomDocumentLengths(rng, 8, 90));
  const int64_t t = Length(layout);
  const Tensor q_order = torch::randperm(t, torch::kLong);
  const Tensor k_order = torch::randperm(t, torch::kLong);
  const TokenLayout q_layout = SelectTokens(layout, q_order);
  const TokenLayout k_layout = SelectTokens(layout, k_order);
  const Inputs in = RandomInputs(t, t, 4, 2, 8);
  const Tensor dout = torch::randn({t, 4, 8});

  const AttentionResult result =
      BlockwiseAttentionForward(in.q, in.k, in.v, q_layout, k_layout, std::nullopt, 8);
  const AttentionGrads grads = BlockwiseAttentionBackward(
      dout, in.q, in.k, in.v, result.out, result.lse, q_layout, k_layout, std::nullopt, 8);
  const ReferenceRun ref = RunReference(in, dout, q_layout, k_layout, 1.0 / std::sqrt(8.0));
  EXPECT_TRUE(AllClose(result.out, ref.result.out));
  EXPECT_TRUE(AllClose(result.lse, ref.result.lse));
  EXPECT_TRUE(AllClose(grads.dq, ref.grads.dq));
  EXPECT_TRUE(AllClose(grads.dk, ref.grads.dk));
  EXPECT_TRUE(AllClose(grads.dv, ref.grads.dv));
}

TEST(BlockwiseAttentionTest, ExplicitScaleIsUsed) {
  torch::manual_seed(12);
  const TokenLayout layout = PackedLayout({5, 30, 1, 20});
  const int64_t t = Length(layout);
  const Inputs in = RandomInputs(t, t, 2, 2, 8);
  const Tensor dout = torch::randn({t, 2, 8});
  const double scale = 0.7;
  const AttentionResult result =
      BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout, scale, 16);
  const AttentionGrads grads = BlockwiseAttentionBackward(dout, in.q, in.k, in.v, result.out,
                                                          result.lse, layout, layout, scale, 16);
  const ReferenceRun ref = RunReference(in, dout, layout, layout, scale);
  EXPECT_TRUE(AllClose(result.out, ref.result.out));
  EXPECT_TRUE(AllClose(result.lse, ref.result.lse));
  EXPECT_TRUE(AllClose(grads.dq, ref.grads.dq));
  EXPECT_TRUE(AllClose(grads.dk, ref.grads.dk));
}

// The scaled copy of q must be a copy even where heads-first q is q itself (one query row):
// once, q was scaled in place there.
TEST(BlockwiseAttentionTest, LeavesItsInputsUntouched) {
  torch::manual_seed(13);
  const TokenLayout layout = PackedLayout({1});
  for (int64_t heads : {1, 2}) {
    const Inputs in = RandomInputs(1, 1, heads, heads, 8);
    const Tensor q = in.q.clone(), k = in.k.clone(), v = in.v.clone();
    const AttentionResult result = BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout);
    BlockwiseAttentionBackward(torch::randn_like(in.q), in.q, in.k, in.v, result.out, result.lse,
                               layout, layout);
    EXPECT_TRUE(torch::equal(in.q, q)) << heads << " heads";
    EXPECT_TRUE(torch::equal(in.k, k)) << heads << " heads";
    EXPECT_TRUE(torch::equal(in.v, v)) << heads << " heads";
  }
}

// Zigzag context parallelism with 2 ranks: the sequence is cut into 4 chunks of unequal length,
// rank 0 holds chunks 0 and 3, rank 1 chunks 1 and 2, and each rank attends to every key. Rows
// must equal the single-process result, and the ranks' dK, dV must sum to it.
TEST(BlockwiseAttentionTest, ZigzagChunksMatchFullAttention) {
  torch::manual_seed(21);
  std::mt19937 rng(21);
  const int64_t block_size = 16;
  const TokenLayout layout = PackedLayout(RandomDocumentLengths(rng, block_size, 230));
  const int64_t t = Length(layout);
  const int64_t hq = 4, hkv = 2, head_dim = 8;
  const Inputs in = RandomInputs(t, t, hq, hkv, head_dim);
  const Tensor dout = torch::randn({t, hq, head_dim});

  const AttentionResult full =
      BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout, std::nullopt, block_size);
  const AttentionGrads full_grads = BlockwiseAttentionBackward(
      dout, in.q, in.k, in.v, full.out, full.lse, layout, layout, std::nullopt, block_size);

  std::vector<int64_t> bounds;
  for (int64_t c = 0; c <= 4; ++c) bounds.push_back(t * c / 4);
  auto chunks = [&](int64_t first, int64_t second) {
    return torch::cat({torch::arange(bounds[first], bounds[first + 1], torch::kLong),
                       torch::arange(bounds[second], bounds[second + 1], torch::kLong)});
  };
  Tensor dk_sum = torch::zeros_like(in.k);
  Tensor dv_sum = torch::zeros_like(in.v);
  for (const Tensor& rows : {chunks(0, 3), chunks(1, 2)}) {
    const TokenLayout q_layout = SelectTokens(layout, rows);
    const Tensor q = in.q.index_select(0, rows);
    const Tensor rank_dout = dout.index_select(0, rows);
    const AttentionResult part =
        BlockwiseAttentionForward(q, in.k, in.v, q_layout, layout, std::nullopt, block_size);
    const AttentionGrads grads = BlockwiseAttentionBackward(
        rank_dout, q, in.k, in.v, part.out, part.lse, q_layout, layout, std::nullopt, block_size);
    EXPECT_TRUE(AllClose(part.out, full.out.index_select(0, rows)));
    EXPECT_TRUE(AllClose(part.lse, full.lse.index_select(1, rows)));
    EXPECT_TRUE(AllClose(grads.dq, full_grads.dq.index_select(0, rows)));
    dk_sum += grads.dk;
    dv_sum += grads.dv;
  }
  EXPECT_TRUE(AllClose(dk_sum, full_grads.dk));
  EXPECT_TRUE(AllClose(dv_sum, full_grads.dv));
}

// Queries are every token plus one of a document absent from the keys, so the merge sees rows
// with both sides, one side and neither side attending.
void ExpectMergeEqualsUnion(const Tensor& first_keys, const Tensor& second_keys) {
  torch::manual_seed(31);
  std::mt19937 rng(31);
  const TokenLayout layout = PackedLayout(RandomDocumentLengths(rng, 16, 200));
  const int64_t t = Length(layout);
  const TokenLayout q_layout = {torch::cat({layout.document, torch::tensor({999L})}),
                                torch::cat({layout.position, torch::tensor({t})})};
  const Inputs in = RandomInputs(t + 1, t, 4, 2, 8);
  auto attend = [&](const Tensor& keys) {
    return BlockwiseAttentionForward(in.q, in.k.index_select(0, keys), in.v.index_select(0, keys),
                                     q_layout, SelectTokens(layout, keys), std::nullopt, 16);
  };
  const AttentionResult a = attend(first_keys);
  const AttentionResult b = attend(second_keys);
  const AttentionResult merged = MergePartialAttention(a, b);
  const AttentionResult all = attend(torch::arange(t, torch::kLong));

  const Tensor a_empty = a.lse.isneginf();
  const Tensor b_empty = b.lse.isneginf();
  ASSERT_TRUE((a_empty & b_empty.logical_not()).any().item<bool>());
  ASSERT_TRUE((b_empty & a_empty.logical_not()).any().item<bool>());
  ASSERT_TRUE((a_empty & b_empty).any().item<bool>());
  ASSERT_TRUE((a_empty.logical_not() & b_empty.logical_not()).any().item<bool>());
  EXPECT_EQ(merged.out.scalar_type(), torch::kFloat);
  EXPECT_TRUE(AllFinite(merged.out));
  EXPECT_FALSE(merged.lse.isnan().any().item<bool>());
  EXPECT_TRUE(AllClose(merged.out, all.out));
  EXPECT_TRUE(AllClose(merged.lse, all.lse));
  // Merging is symmetric.
  EXPECT_TRUE(AllClose(MergePartialAttention(b, a).out, merged.out));
}

TEST(MergePartialAttentionTest, ContiguousKeyHalvesMergeToTheUnion) {
  const int64_t t = Length(PackedLayout([] {
    std::mt19937 rng(31);
    return RandomDocumentLengths(rng, 16, 200);
  }()));
  ExpectMergeEqualsUnion(torch::arange(0, t / 2, torch::kLong),
                         torch::arange(t / 2, t, torch::kLong));
}

TEST(MergePartialAttentionTest, InterleavedKeySubsetsMergeToTheUnion) {
  const int64_t t = Length(PackedLayout([] {
    std::mt19937 rng(31);
    return RandomDocumentLengths(rng, 16, 200);
  }()));
  torch::manual_seed(32);
  const Tensor in_first = torch::rand({t}) < 0.5;
  ExpectMergeEqualsUnion(torch::nonzero(in_first).squeeze(1),
                         torch::nonzero(in_first.logical_not()).squeeze(1));
}

TEST(MergePartialAttentionTest, BothSidesEmptyGivesZeroWithoutNaN) {
  const AttentionResult empty = {torch::zeros({3, 2, 4}), torch::full({2, 3}, kNegInf)};
  const AttentionResult merged = MergePartialAttention(empty, empty);
  EXPECT_TRUE(torch::equal(merged.out, torch::zeros({3, 2, 4})));
  EXPECT_TRUE(merged.lse.isneginf().all().item<bool>());
}

TEST(DocumentMaskedAttentionTest, AutogradMatchesReference) {
  torch::manual_seed(41);
  std::mt19937 rng(41);
  const int64_t block_size = 16;
  const TokenLayout layout = PackedLayout(RandomDocumentLengths(rng, block_size, 150));
  const int64_t t = Length(layout);
  const int64_t hq = 4, hkv = 2, head_dim = 8;
  const Inputs in = RandomInputs(t, t, hq, hkv, head_dim);
  const Tensor weight = torch::randn({t, hq, head_dim});

  Tensor q = in.q.clone().requires_grad_(true);
  Tensor k = in.k.clone().requires_grad_(true);
  Tensor v = in.v.clone().requires_grad_(true);
  const Tensor out = DocumentMaskedAttention(q, k, v, layout, layout, std::nullopt, block_size);
  ASSERT_TRUE(out.requires_grad());
  (out * weight).sum().backward();

  // d/d(out) of sum(out * weight) is weight.
  const ReferenceRun ref = RunReference(in, weight, layout, layout, 1.0 / std::sqrt(8.0));
  EXPECT_TRUE(AllClose(out, ref.result.out));
  ASSERT_TRUE(q.grad().defined() && k.grad().defined() && v.grad().defined());
  EXPECT_TRUE(AllClose(q.grad(), ref.grads.dq));
  EXPECT_TRUE(AllClose(k.grad(), ref.grads.dk));
  EXPECT_TRUE(AllClose(v.grad(), ref.grads.dv));
}

TEST(DocumentMaskedAttentionTest, Bfloat16InputsAccumulateInFloat32) {
  torch::manual_seed(42);
  const TokenLayout layout = PackedLayout({1, 70, 3, 40});
  const int64_t t = Length(layout);
  const Inputs in = RandomInputs(t, t, 4, 2, 16, torch::kBFloat16);
  const Tensor weight = torch::randn({t, 4, 16});
  Tensor q = in.q.clone().requires_grad_(true);
  Tensor k = in.k.clone().requires_grad_(true);
  Tensor v = in.v.clone().requires_grad_(true);
  const Tensor out = DocumentMaskedAttention(q, k, v, layout, layout, std::nullopt, 32);
  (out.to(torch::kFloat) * weight).sum().backward();
  ASSERT_EQ(out.scalar_type(), torch::kBFloat16);
  ASSERT_EQ(q.grad().scalar_type(), torch::kBFloat16);

  // The inputs are exact in float64, so the only error left is rounding the results to bf16.
  const ReferenceRun ref = RunReference(in, weight, layout, layout, 0.25);
  EXPECT_TRUE(AllClose(out, ref.result.out, 1e-2, 1e-2));
  EXPECT_TRUE(AllClose(q.grad(), ref.grads.dq, 1e-2, 1e-2));
  EXPECT_TRUE(AllClose(k.grad(), ref.grads.dk, 1e-2, 1e-2));
  EXPECT_TRUE(AllClose(v.grad(), ref.grads.dv, 1e-2, 1e-2));
  const AttentionResult result = BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout);
  ASSERT_EQ(result.lse.scalar_type(), torch::kFloat);
  EXPECT_TRUE(AllClose(result.lse, ref.result.lse, 1e-5, 1e-5));
}

// Keys are a subset of a packed sequence, as on a context-parallel rank. Query 0 belongs to a
// document with no keys; query 1 precedes every key of its document; query 2 attends normally.
TEST(DocumentMaskedAttentionTest, RowWithoutAllowedKeyIsZeroWithZeroGradients) {
  torch::manual_seed(51);
  const TokenLayout q_layout = {torch::tensor({7L, 0L, 0L}), torch::tensor({3L, 1L, 30L})};
  const TokenLayout k_layout = {torch::tensor({0L, 0L, 0L, 1L, 1L}),
                                torch::tensor({10L, 11L, 12L, 40L, 41L})};
  const Inputs in = RandomInputs(3, 5, 2, 1, 4);
  Tensor q = in.q.clone().requires_grad_(true);
  Tensor k = in.k.clone().requires_grad_(true);
  Tensor v = in.v.clone().requires_grad_(true);
  const Tensor out = DocumentMaskedAttention(q, k, v, q_layout, k_layout, std::nullopt, 2);
  out.pow(2).sum().backward();
  const AttentionResult result =
      BlockwiseAttentionForward(in.q, in.k, in.v, q_layout, k_layout, std::nullopt, 2);

  for (const Tensor& x : {out, q.grad(), k.grad(), v.grad()}) EXPECT_TRUE(AllFinite(x));
  EXPECT_TRUE(torch::equal(out.narrow(0, 0, 2), torch::zeros({2, 2, 4})));
  EXPECT_TRUE(result.lse.narrow(1, 0, 2).isneginf().all().item<bool>());
  EXPECT_TRUE(torch::isfinite(result.lse.select(1, 2)).all().item<bool>());
  EXPECT_TRUE(torch::equal(q.grad().narrow(0, 0, 2), torch::zeros({2, 2, 4})));
  // Only query 2 reaches keys, and only those of document 0.
  EXPECT_TRUE(torch::equal(k.grad().narrow(0, 3, 2), torch::zeros({2, 1, 4})));
  EXPECT_TRUE(torch::equal(v.grad().narrow(0, 3, 2), torch::zeros({2, 1, 4})));
  EXPECT_GT(v.grad().narrow(0, 0, 3).abs().sum().item<double>(), 0.0);
}

TEST(BlockwiseAttentionTest, NoKeysAtAll) {
  const TokenLayout q_layout = PackedLayout({4});
  const TokenLayout k_layout = PackedLayout({});
  const Inputs in = RandomInputs(4, 0, 2, 2, 4);
  const AttentionResult result = BlockwiseAttentionForward(in.q, in.k, in.v, q_layout, k_layout);
  EXPECT_TRUE(torch::equal(result.out, torch::zeros({4, 2, 4})));
  EXPECT_TRUE(result.lse.isneginf().all().item<bool>());
  const AttentionGrads grads = BlockwiseAttentionBackward(
      torch::ones({4, 2, 4}), in.q, in.k, in.v, result.out, result.lse, q_layout, k_layout);
  EXPECT_TRUE(torch::equal(grads.dq, torch::zeros({4, 2, 4})));
  EXPECT_EQ(grads.dk.sizes(), in.k.sizes());
}

int64_t PeakResidentBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// T = 16384: a [T, T] float32 score matrix alone would be 1 GiB, so a peak that grows by far
// less shows that nothing quadratic is allocated. Rows of the result are checked against the
// naive reference restricted to a few queries.
TEST(BlockwiseAttentionTest, LongSequenceUsesLinearMemory) {
  torch::manual_seed(61);
  const int64_t t = 16384;
  const TokenLayout layout = PackedLayout({1, 3, 9000, 1, t - 9005});
  const int64_t hq = 2, hkv = 1, head_dim = 8, block_size = 256;
  const Inputs in = RandomInputs(t, t, hq, hkv, head_dim);
  const Tensor rows =
      torch::tensor({0L, 1L, 3L, 4L, 300L, 8999L, 9003L, 9004L, 9005L, 12000L, t - 1L});
  // Only the checked rows carry gradient, so the reference needs only those queries.
  Tensor dout = torch::zeros({t, hq, head_dim});
  dout.index_copy_(0, rows, torch::randn({rows.size(0), hq, head_dim}));

  const int64_t peak_before = PeakResidentBytes();
  const AttentionResult result =
      BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout, std::nullopt, block_size);
  const AttentionGrads grads = BlockwiseAttentionBackward(
      dout, in.q, in.k, in.v, result.out, result.lse, layout, layout, std::nullopt, block_size);
  const int64_t growth = PeakResidentBytes() - peak_before;
  EXPECT_LT(growth, int64_t{256} << 20) << "peak resident memory grew by " << growth << " bytes";

  const Inputs row_inputs = {in.q.index_select(0, rows), in.k, in.v};
  const ReferenceRun ref = RunReference(row_inputs, dout.index_select(0, rows),
                                        SelectTokens(layout, rows), layout, 1.0 / std::sqrt(8.0));
  EXPECT_TRUE(AllClose(result.out.index_select(0, rows), ref.result.out));
  EXPECT_TRUE(AllClose(result.lse.index_select(1, rows), ref.result.lse));
  EXPECT_TRUE(AllClose(grads.dq.index_select(0, rows), ref.grads.dq));
  EXPECT_TRUE(AllClose(grads.dk, ref.grads.dk));
  EXPECT_TRUE(AllClose(grads.dv, ref.grads.dv));
}

// Runs `fn` and checks that it throws c10::Error whose message contains `needle`.
template <typename Fn>
::testing::AssertionResult ThrowsWith(Fn fn, const std::string& needle) {
  try {
    fn();
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    if (message.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "message \"" << message << "\" lacks \"" << needle << "\"";
  }
  return ::testing::AssertionFailure() << "no exception";
}

TEST(BlockwiseAttentionTest, RejectsInvalidArguments) {
  const TokenLayout layout = PackedLayout({3, 5});
  const Inputs in = RandomInputs(8, 8, 4, 2, 4);
  auto forward = [&](const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& q_layout,
                     int64_t block_size = 4) {
    return [=] { BlockwiseAttentionForward(q, k, v, q_layout, layout, std::nullopt, block_size); };
  };
  EXPECT_TRUE(ThrowsWith(forward(in.q.flatten(1), in.k, in.v, layout), "q must be [Tq, Hq, D]"));
  EXPECT_TRUE(ThrowsWith(forward(in.q, in.k, in.v.narrow(2, 0, 2), layout),
                         "k and v must have the same shape"));
  EXPECT_TRUE(ThrowsWith(forward(in.q.narrow(1, 0, 3), in.k, in.v, layout),
                         "q's head count (3) must be a multiple of k's (2)"));
  EXPECT_TRUE(ThrowsWith(forward(in.q.narrow(2, 0, 2), in.k, in.v, layout), "head dim"));
  EXPECT_TRUE(ThrowsWith(forward(in.q, in.k.to(torch::kDouble), in.v, layout), "same dtype"));
  EXPECT_TRUE(
      ThrowsWith(forward(in.q.to(torch::kInt), in.k.to(torch::kInt), in.v.to(torch::kInt), layout),
                 "q must be floating point"));
  EXPECT_TRUE(ThrowsWith(forward(in.q, in.k, in.v, layout, 0), "block_size must be positive"));
  EXPECT_TRUE(
      ThrowsWith(forward(in.q, in.k, in.v, PackedLayout({3, 4})), "q_layout.document must be [8]"));
  EXPECT_TRUE(
      ThrowsWith(forward(in.q, in.k, in.v, {layout.document, layout.position.to(torch::kInt)}),
                 "q_layout.position must be int64"));

  const AttentionResult result = BlockwiseAttentionForward(in.q, in.k, in.v, layout, layout);
  EXPECT_TRUE(ThrowsWith(
      [&] {
        BlockwiseAttentionBackward(in.q, in.q, in.k, in.v, result.out, result.lse.t(), layout,
                                   layout);
      },
      "lse must be [Hq, Tq] = [4, 8]"));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        BlockwiseAttentionBackward(in.q.narrow(0, 0, 4), in.q, in.k, in.v, result.out, result.lse,
                                   layout, layout);
      },
      "dout must have q's shape"));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        MergePartialAttention(result, {result.out.narrow(0, 0, 4), result.lse});
      },
      "b.out must have a.out's shape"));
  EXPECT_TRUE(ThrowsWith(
      [&] {
        MergePartialAttention(result, {result.out, result.lse.to(torch::kDouble)});
      },
      "b.lse must be float32"));
}

}  // namespace
}  // namespace prolong::attention
