#include "trainer/train/blocked_cross_entropy.h"

#include <algorithm>

#include "torch/autograd.h"

namespace prolong::train {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// float32 logits of rows [begin, begin + size).
Tensor BlockLogits(const Tensor& hidden, const Tensor& weight, int64_t begin, int64_t size) {
  return torch::linear(hidden.narrow(0, begin, size), weight).to(torch::kFloat32);
}

class BlockedCrossEntropy : public torch::autograd::Function<BlockedCrossEntropy> {
 public:
  // `mask` is float32 and `targets` already safe to gather at (see BlockedCrossEntropySum).
  static Tensor forward(AutogradContext* ctx, const Tensor& hidden, const Tensor& weight,
                        const Tensor& targets, const Tensor& mask, int64_t block_size) {
    const int64_t tokens = hidden.size(0);
    Tensor lse = torch::empty({tokens}, hidden.options().dtype(torch::kFloat32));
    // Summed over blocks in float64: 512K tokens of losses near 10 stay exact to float32.
    Tensor total = torch::zeros({}, hidden.options().dtype(torch::kFloat64));
    for (int64_t begin = 0; begin < tokens; begin += block_size) {
      const int64_t size = std::min(block_size, tokens - begin);
      const Tensor logits = BlockLogits(hidden, weight, begin, size);
      const Tensor block_lse = torch::logsumexp(logits, 1);
      const Tensor target_logits =
          logits.gather(1, targets.narrow(0, begin, size).unsqueeze(1)).squeeze(1);
      total += ((block_lse - target_logits) * mask.narrow(0, begin, size)).sum(torch::kFloat64);
      lse.narrow(0, begin, size).copy_(block_lse);
    }
    ctx->save_for_backward({hidden, weight, targets, mask, lse});
    ctx->saved_data["block_size"] = block_size;
    return total.to(torch::kFloat32);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor& hidden = saved[0];
    const Tensor& weight = saved[1];
    const Tensor& targets = saved[2];
    const Tensor& lse = saved[4];
    const int64_t block_size = ctx->saved_data["block_size"].toInt();
    // d loss / d logits[t] = g * mask[t] * (softmax(logits[t]) - onehot(targets[t])).
    const Tensor scale = saved[3] * grad_outputs[0].to(torch::kFloat32);
    const int64_t tokens = hidden.size(0);
    Tensor grad_hidden = torch::empty_like(hidden);
    Tensor grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
    for (int64_t begin = 0; begin < tokens; begin += block_size) {
      const int64_t size = std::min(block_size, tokens - begin);
      Tensor dlogits = BlockLogits(hidden, weight, begin, size)
                           .sub_(lse.narrow(0, begin, size).unsqueeze(1))
                           .exp_();
      dlogits.scatter_add_(1, targets.narrow(0, begin, size).unsqueeze(1),
                           torch::full({size, 1}, -1.0, dlogits.options()));
      dlogits.mul_(scale.narrow(0, begin, size).unsqueeze(1));
      const Tensor block = hidden.narrow(0, begin, size);
      const Tensor d = dlogits.to(hidden.scalar_type());
      grad_hidden.narrow(0, begin, size).copy_(d.mm(weight));
      grad_weight.addmm_(dlogits.t(), block.to(torch::kFloat32));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor BlockedCrossEntropySum(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                              const Tensor& loss_mask, int64_t block_size) {
  TORCH_CHECK(block_size >= 1, "block_size must be >= 1, got ", block_size);
  TORCH_CHECK(hidden.dim() == 2, "hidden must be [T, H], got ", hidden.sizes());
  TORCH_CHECK(weight.dim() == 2 && weight.size(1) == hidden.size(1),
              "weight must be [V, H] with H = ", hidden.size(1), ", got ", weight.sizes());
  TORCH_CHECK(hidden.scalar_type() == weight.scalar_type(), "hidden (", hidden.scalar_type(),
              ") and weight (", weight.scalar_type(), ") must have one dtype");
  const int64_t tokens = hidden.size(0);
  TORCH_CHECK(
      targets.dim() == 1 && targets.size(0) == tokens && targets.scalar_type() == torch::kInt64,
      "targets must be int64 [", tokens, "], got ", targets.scalar_type(), " ", targets.sizes());
  TORCH_CHECK(loss_mask.dim() == 1 && loss_mask.size(0) == tokens, "loss_mask must be [", tokens,
              "], got ", loss_mask.sizes());
  const Tensor mask = loss_mask.to(hidden.device(), torch::kFloat32);
  const Tensor weighted = mask.ne(0);
  const Tensor target = targets.to(hidden.device());
  const int64_t vocab = weight.size(0);
  TORCH_CHECK(!(weighted & (target.lt(0) | target.ge(vocab))).any().item<bool>(),
              "targets of weighted tokens must be in [0, ", vocab, ")");
  // Unweighted tokens may carry any id (-100, say): gather at 0 instead, weighted 0.
  const Tensor safe_targets = torch::where(weighted, target, torch::zeros_like(target));
  return BlockedCrossEntropy::apply(hidden, weight, safe_targets, mask, block_size);
}

}  // namespace prolong::train
