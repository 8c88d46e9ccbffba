#include "trainer/parallel/context_parallel_attention.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "torch/autograd.h"
#include "trainer/parallel/ring_attention.h"

namespace prolong::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Every rank's rows, padded to the longest rank so that shapes agree, gathered in rank order;
// `counts` says how many rows of each block are real.
torch::Tensor GatherPadded(comm::Communicator& cp, const torch::Tensor& local, int64_t rows,
                           double pad_value) {
  std::vector<int64_t> shape = local.sizes().vec();
  shape[0] = rows;
  torch::Tensor padded = torch::full(shape, pad_value, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  return cp.AllGather(padded);
}

std::vector<int64_t> GatherCounts(comm::Communicator& cp, int64_t count) {
  const torch::Tensor all = cp.AllGather(torch::tensor({count}, torch::kInt64));
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

class AllGatherAttention : public torch::autograd::Function<AllGatherAttention> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& document,
                               const torch::Tensor& position, comm::Communicator* cp,
                               double scale) {
    const std::vector<int64_t> counts = GatherCounts(*cp, k.size(0));
    const int64_t rows = *std::max_element(counts.begin(), counts.end());
    // Padding keys carry document -1, which no query has: they are never attended.
    const torch::Tensor all_k = GatherPadded(*cp, k, rows, 0);
    const torch::Tensor all_v = GatherPadded(*cp, v, rows, 0);
    const attention::TokenLayout key_layout{GatherPadded(*cp, document, rows, -1),
                                            GatherPadded(*cp, position, rows, 0)};
    const attention::AttentionResult result = attention::BlockwiseAttentionForward(
        q, all_k, all_v, {document, position}, key_layout, scale);
    ctx->save_for_backward({q, all_k, all_v, result.out, result.lse, document, position,
                            key_layout.document, key_layout.position});
    ctx->saved_data["cp"] = reinterpret_cast<int64_t>(cp);
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["local_rows"] = k.size(0);
    return result.out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    auto* cp = reinterpret_cast<comm::Communicator*>(ctx->saved_data["cp"].toInt());
    const attention::AttentionGrads grads = attention::BlockwiseAttentionBackward(
        grad_outputs[0].contiguous(), saved[0], saved[1], saved[2], saved[3], saved[4],
        {saved[5], saved[6]}, {saved[7], saved[8]}, ctx->saved_data["scale"].toDouble());
    // Each rank's keys got gradient from every rank's queries: sum them at their owner. Summed
    // in float32, so that the order of C partial sums costs no precision in bf16.
    const int64_t local_rows = ctx->saved_data["local_rows"].toInt();
    auto owned = [&](const torch::Tensor& all) {
      return cp->ReduceScatterSum(all.to(torch::kFloat32))
          .narrow(0, 0, local_rows)
          .to(all.scalar_type());
    };
    return {grads.dq,        owned(grads.dk), owned(grads.dv), torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor ContextParallelAttention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const attention::TokenLayout& layout,
                                       comm::Communicator* cp, double scale, CpScheme scheme) {
  if (cp == nullptr || cp->size() == 1) {
    return attention::DocumentMaskedAttention(q, k, v, layout, layout, scale);
  }
  if (scheme == CpScheme::kRing) return RingAttention(q, k, v, layout, cp, scale);
  return AllGatherAttention::apply(q, k, v, layout.document, layout.position, cp, scale);
}

}  // namespace prolong::parallel
