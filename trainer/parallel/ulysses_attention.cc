#include "trainer/parallel/ulysses_attention.h"

#include "torch/autograd.h"
#include "torch/torch.h"

namespace prolong::parallel {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Communicator::AllToAll as an autograd operation: the gradient goes back through the same
// exchange, as the exchange is its own inverse.
class AllToAllRows : public torch::autograd::Function<AllToAllRows> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, comm::Communicator* cp) {
    ctx->saved_data["cp"] = reinterpret_cast<int64_t>(cp);
    return cp->AllToAll(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto* cp = reinterpret_cast<comm::Communicator*>(ctx->saved_data["cp"].toInt());
    return {cp->AllToAll(grad_outputs[0].contiguous()), Tensor()};
  }
};

// This rank's tokens (padded to `rows`), every head -> every rank's tokens in rank order (each
// padded to `rows`), this rank's heads / C: head group r goes to rank r.
Tensor SequenceToHeads(const Tensor& x, int64_t rows, comm::Communicator* cp) {
  const int64_t c = cp->size(), heads = x.size(1), dim = x.size(2);
  const Tensor padded = torch::constant_pad_nd(x, {0, 0, 0, 0, 0, rows - x.size(0)});
  const Tensor by_group = padded.view({rows, c, heads / c, dim}).transpose(0, 1).contiguous();
  return AllToAllRows::apply(by_group.view({c * rows, heads / c, dim}), cp);
}

// The inverse: every token, this rank's heads -> this rank's `tokens` tokens, every head.
Tensor HeadsToSequence(const Tensor& x, int64_t rows, int64_t tokens, comm::Communicator* cp) {
  const int64_t c = cp->size(), group = x.size(1), dim = x.size(2);
  const Tensor back = AllToAllRows::apply(x.contiguous(), cp);  // [c * rows, group, dim]
  return back.view({c, rows, group, dim})
      .transpose(0, 1)
      .reshape({rows, c * group, dim})
      .narrow(0, 0, tokens);
}

}  // namespace

Tensor UlyssesAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                        const GatheredLayouts& layouts, comm::Communicator* cp, double scale,
                        const attention::PartialAttention& local) {
  const int64_t c = cp->size();
  TORCH_CHECK(q.size(1) % c == 0, "Ulysses: ", q.size(1), " query heads over ", c, " ranks");
  Tensor keys = k, values = v;
  if (k.size(1) % c != 0) {
    // Fewer kv heads than ranks: each kv head goes to every rank whose query heads read it.
    TORCH_CHECK(c % k.size(1) == 0, "Ulysses: ", k.size(1), " kv heads over ", c, " ranks");
    keys = k.repeat_interleave(c / k.size(1), 1);
    values = v.repeat_interleave(c / v.size(1), 1);
  }
  const int64_t rows = layouts.rows;
  // The whole sequence's tokens for this rank's heads, padding rows left out.
  auto whole = [&](const Tensor& x) {
    return SequenceToHeads(x, rows, cp).index_select(0, layouts.token_rows);
  };
  const Tensor out = attention::AttendKeys(whole(q), whole(keys), whole(values), layouts.tokens,
                                           layouts.tokens, scale, local);
  // Back in the padded rows, then to this rank's tokens with every head.
  const Tensor padded = torch::zeros({c * rows, out.size(1), out.size(2)}, out.options())
                            .index_copy(0, layouts.token_rows, out);
  return HeadsToSequence(padded, rows, q.size(0), cp);
}

}  // namespace prolong::parallel
