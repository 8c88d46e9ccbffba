#include "trainer/parallel/context_parallel_attention.h"

#include <cstdint>
#include <memory>
#include <vector>

#include "torch/autograd.h"
#include "trainer/parallel/ring_attention.h"
#include "trainer/parallel/ulysses_attention.h"

namespace prolong::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// `local` followed by zero rows up to `rows`, gathered from every rank in rank order.
torch::Tensor GatherPadded(comm::Communicator& cp, const torch::Tensor& local, int64_t rows) {
  std::vector<int64_t> shape = local.sizes().vec();
  shape[0] = rows;
  torch::Tensor padded = torch::zeros(shape, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  return cp.AllGather(padded);
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
    return GatherPadded(*cp, local, rows);
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

}  // namespace

ContextParallelAttention::ContextParallelAttention(comm::Communicator* cp, CpScheme scheme,
                                                   const attention::PartialAttention& local)
    : cp_(cp), scheme_(scheme), local_(local) {}

torch::Tensor ContextParallelAttention::operator()(const torch::Tensor& q, const torch::Tensor& k,
                                                   const torch::Tensor& v,
                                                   const attention::TokenLayout& layout,
                                                   double scale) {
  if (cp_ == nullptr || cp_->size() == 1) {
    return attention::DocumentMaskedAttention(q, k, v, layout, layout, scale);
  }
  const std::shared_ptr<const GatheredLayouts> layouts = Layouts(layout);
  if (scheme_ == CpScheme::kRing) {
    return RingAttention(q, k, v, layout, *layouts, cp_, scale, local_);
  }
  if (scheme_ == CpScheme::kUlysses) {
    return UlyssesAttention(q, k, v, *layouts, cp_, scale, local_);
  }
  // K and V travel together: one all-gather forward and one reduce-scatter backward.
  const torch::Tensor kv = GatherRows::apply(torch::stack({k, v}, 1), cp_, layouts->rows);
  return attention::AttendKeys(q, kv.select(1, 0), kv.select(1, 1), layout, layouts->keys, scale,
                               local_);
}

std::shared_ptr<const GatheredLayouts> ContextParallelAttention::Layouts(
    const attention::TokenLayout& layout) {
  const absl::MutexLock lock(&mutex_);
  if (gathered_ == nullptr || !document_.Is(layout.document) || !position_.Is(layout.position)) {
    document_ = attention::TensorSnapshot(layout.document);
    position_ = attention::TensorSnapshot(layout.position);
    gathered_ = std::make_shared<const GatheredLayouts>(
        GatherLayouts(*cp_, layout, /*visibility=*/scheme_ == CpScheme::kRing));
  }
  return gathered_;
}

}  // namespace prolong::parallel
