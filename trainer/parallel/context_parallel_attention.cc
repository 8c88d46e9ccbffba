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

// Every rank's rows (padded) gathered in rank order, as an autograd operation: each gathered
// row's gradient is summed at the rank that owns the row. Summed in float32, so that the order
// of C partial sums costs no precision in bf16.
class GatherRows : public torch::autograd::Function<GatherRows> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& local,
                               comm::Communicator* cp, int64_t rows) {
    ctx->saved_data["cp"] = reinterpret_cast<int64_t>(cp);
    ctx->saved_data["local_rows"] = local.size(0);
    return GatherPadded(*cp, local, rows, 0);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto* cp = reinterpret_cast<comm::Communicator*>(ctx->saved_data["cp"].toInt());
    const torch::Tensor& all = grad_outputs[0];
    return {cp->ReduceScatterSum(all.to(torch::kFloat32))
                .narrow(0, 0, ctx->saved_data["local_rows"].toInt())
                .to(all.scalar_type()),
            torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor AllGatherAttention(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, const attention::TokenLayout& layout,
                                 comm::Communicator* cp, double scale,
                                 const attention::PartialAttention& local) {
  const std::vector<int64_t> counts = GatherCounts(*cp, k.size(0));
  const int64_t rows = *std::max_element(counts.begin(), counts.end());
  // Padding keys carry document -1, which no query has: they are never attended.
  const attention::TokenLayout key_layout{GatherPadded(*cp, layout.document, rows, -1),
                                          GatherPadded(*cp, layout.position, rows, 0)};
  return attention::AttendKeys(q, GatherRows::apply(k, cp, rows), GatherRows::apply(v, cp, rows),
                               layout, key_layout, scale, local);
}

}  // namespace

torch::Tensor ContextParallelAttention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const attention::TokenLayout& layout,
                                       comm::Communicator* cp, double scale, CpScheme scheme,
                                       const attention::PartialAttention& local) {
  if (cp == nullptr || cp->size() == 1) {
    return attention::DocumentMaskedAttention(q, k, v, layout, layout, scale);
  }
  if (scheme == CpScheme::kRing) return RingAttention(q, k, v, layout, cp, scale, local);
  return AllGatherAttention(q, k, v, layout, cp, scale, local);
}

}  // namespace prolong::parallel
