#include "trainer/train/blocked_cross_entropy.h"

#include <string>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace prolong::train {
namespace {

using torch::Tensor;

void ExpectClose(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = expected.abs().max().item<double>();
  const double error = (actual - expected).abs().max().item<double>();
  EXPECT_LE(error, 1e-5 * scale) << what << ": largest difference " << error << " of " << scale;
}

struct Inputs {
  Tensor hidden, weight, targets, mask;
};

Inputs MakeInputs(int64_t tokens, int64_t vocab, int64_t dim, uint64_t seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.hidden = torch::randn({tokens, dim});
  in.weight = torch::randn({vocab, dim}) * 0.5;
  in.targets = torch::randint(vocab, {tokens}, torch::kInt64);
  in.mask = torch::rand({tokens}) > 0.3;
  return in;
}

// Plain: full logits and torch's cross_entropy.
Tensor PlainLoss(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                 const Tensor& mask) {
  const Tensor losses = torch::nn::functional::cross_entropy(
      torch::linear(hidden, weight), targets,
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return (losses * mask.to(torch::kFloat32)).sum();
}

TEST(BlockedCrossEntropyTest, MatchesFullLogitsInValueAndGradients) {
  constexpr int64_t kTokens = 50, kVocab = 37, kDim = 16;
  for (int64_t block : {1, 7, 13, 49, 50, 2048}) {
    SCOPED_TRACE(block);
    const Inputs in = MakeInputs(kTokens, kVocab, kDim, 5);
    const Tensor upstream = torch::tensor(0.37f);  // Not 1, so the incoming gradient is used.

    Tensor h1 = in.hidden.clone().requires_grad_(), w1 = in.weight.clone().requires_grad_();
    const Tensor blocked = BlockedCrossEntropySum(h1, w1, in.targets, in.mask, block);
    (blocked * upstream).backward();

    Tensor h2 = in.hidden.clone().requires_grad_(), w2 = in.weight.clone().requires_grad_();
    const Tensor plain = PlainLoss(h2, w2, in.targets, in.mask);
    (plain * upstream).backward();

    EXPECT_EQ(blocked.scalar_type(), torch::kFloat32);
    EXPECT_EQ(blocked.dim(), 0);
    ExpectClose(blocked.detach(), plain.detach(), "loss");
    ExpectClose(h1.grad(), h2.grad(), "d hidden");
    ExpectClose(w1.grad(), w2.grad(), "d weight");
  }
}

TEST(BlockedCrossEntropyTest, MaskedTokensContributeNothingWhateverTheirTarget) {
  const Inputs in = MakeInputs(20, 11, 8, 6);
  // -100 and out-of-vocabulary targets where the mask is off, as collators write them.
  const Tensor targets = torch::where(in.mask, in.targets, torch::full_like(in.targets, -100));
  Tensor h = in.hidden.clone().requires_grad_();
  BlockedCrossEntropySum(h, in.weight, targets, in.mask, 3).backward();
  const Tensor unmasked_rows = h.grad().index({in.mask.logical_not()});
  EXPECT_EQ(unmasked_rows.abs().max().item<float>(), 0);
  EXPECT_NEAR(BlockedCrossEntropySum(in.hidden, in.weight, targets, in.mask, 3).item<float>(),
              PlainLoss(in.hidden, in.weight, in.targets, in.mask).item<float>(), 1e-4);
}

TEST(BlockedCrossEntropyTest, AFloatMaskWeightsTokens) {
  const Inputs in = MakeInputs(30, 13, 8, 7);
  const Tensor weights = torch::rand({30});
  Tensor h1 = in.hidden.clone().requires_grad_(), h2 = in.hidden.clone().requires_grad_();
  const Tensor blocked = BlockedCrossEntropySum(h1, in.weight, in.targets, weights, 4);
  blocked.backward();
  const Tensor plain = PlainLoss(h2, in.weight, in.targets, weights);
  plain.backward();
  ExpectClose(blocked.detach(), plain.detach(), "loss");
  ExpectClose(h1.grad(), h2.grad(), "d hidden");
}

TEST(BlockedCrossEntropyTest, AnEmptyMaskGivesZero) {
  const Inputs in = MakeInputs(10, 5, 4, 8);
  EXPECT_EQ(
      BlockedCrossEntropySum(in.hidden, in.weight, in.targets, torch::zeros({10}, torch::kBool))
          .item<float>(),
      0);
}

TEST(BlockedCrossEntropyTest, InvalidArgumentsAreNamed) {
  const Inputs in = MakeInputs(10, 5, 4, 9);
  auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const c10::Error& e) {
      return e.what_without_backtrace();
    }
    return "";
  };
  EXPECT_NE(message([&] {
              BlockedCrossEntropySum(in.hidden, in.weight, in.targets + 5,
                                     torch::ones({10}, torch::kBool));
            }).find("targets of weighted tokens must be in [0, 5)"),
            std::string::npos);
  EXPECT_NE(message([&] {
              BlockedCrossEntropySum(in.hidden, in.weight.t(), in.targets, in.mask);
            }).find("weight must be [V, H]"),
            std::string::npos);
  EXPECT_NE(message([&] {
              BlockedCrossEntropySum(in.hidden, in.weight, in.targets, in.mask, 0);
            }).find("block_size"),
            std::string::npos);
  EXPECT_NE(message([&] {
              BlockedCrossEntropySum(in.hidden, in.weight, in.targets.narrow(0, 0, 3), in.mask);
            }).find("targets must be int64 [10]"),
            std::string::npos);
}

}  // namespace
}  // namespace prolong::train
