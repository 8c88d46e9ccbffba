#include "trainer/attention/partial_attention.h"

#include <optional>

#include "torch/autograd.h"
#include "trainer/attention/attention_memo.h"

namespace prolong::attention {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class BlockwisePartial : public PartialAttention {
 public:
  AttentionResult Forward(const Tensor& q, const Tensor& k, const Tensor& v,
                          const TokenLayout& q_layout, const TokenLayout& k_layout,
                          double scale) const override {
    return BlockwiseAttentionForward(q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat),
                                     q_layout, k_layout, scale);
  }

  AttentionGrads Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& out, const Tensor& lse, const TokenLayout& q_layout,
                          const TokenLayout& k_layout, double scale) const override {
    return BlockwiseAttentionBackward(dout, q.to(torch::kFloat), k.to(torch::kFloat),
                                      v.to(torch::kFloat), out, lse, q_layout, k_layout, scale);
  }
};

class AttendKeysFunction : public torch::autograd::Function<AttendKeysFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& q_document, const Tensor& q_position,
                        const Tensor& k_document, const Tensor& k_position, double scale,
                        const PartialAttention* attention) {
    // A checkpointed layer's recomputation may take the result its forward recorded.
    const std::optional<AttentionResult> replayed = ReplayAttention();
    const AttentionResult result = replayed ? *replayed
                                            : attention->Forward(q, k, v, {q_document, q_position},
                                                                 {k_document, k_position}, scale);
    if (!replayed) RecordAttention(result);
    ctx->save_for_backward(
        {q, k, v, result.out, result.lse, q_document, q_position, k_document, k_position});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["attention"] = reinterpret_cast<int64_t>(attention);
    return result.out.to(q.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    variable_list result(9);  // one per forward argument; only q, k and v get gradients
    if (!grad_outputs[0].defined()) return result;
    const variable_list saved = ctx->get_saved_variables();
    const auto* attention =
        reinterpret_cast<const PartialAttention*>(ctx->saved_data["attention"].toInt());
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2];
    const AttentionGrads grads = attention->Backward(
        grad_outputs[0].contiguous(), q, k, v, saved[3], saved[4], {saved[5], saved[6]},
        {saved[7], saved[8]}, ctx->saved_data["scale"].toDouble());
    result[0] = grads.dq.to(q.scalar_type());
    result[1] = grads.dk.to(k.scalar_type());
    result[2] = grads.dv.to(v.scalar_type());
    return result;
  }
};

}  // namespace

const PartialAttention& BlockwisePartialAttention() {
  static const BlockwisePartial* const kBlockwise = new BlockwisePartial();
  return *kBlockwise;
}

Tensor AttendKeys(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& q_layout,
                  const TokenLayout& k_layout, double scale, const PartialAttention& attention) {
  return AttendKeysFunction::apply(q, k, v, q_layout.document, q_layout.position, k_layout.document,
                                   k_layout.position, scale, &attention);
}

}  // namespace prolong::attention
