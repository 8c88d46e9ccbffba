#include "trainer/attention/varlen_attention.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "torch/torch.h"
#include "trainer/attention/tensor_snapshot.h"

namespace prolong::attention {
namespace {

using torch::Tensor;

// A call's entries as blockwise layouts: entry e is document e; a causal entry's query r sits
// at key position r + (keys - queries), a non-causal entry's queries after every key.
std::pair<TokenLayout, TokenLayout> EntryLayouts(const VarlenCall& call, torch::Device device) {
  std::vector<int64_t> q_document, q_position, k_document, k_position;
  for (size_t e = 0; e + 1 < call.cu_q.size(); ++e) {
    const int64_t queries = call.cu_q[e + 1] - call.cu_q[e];
    const int64_t keys = call.cu_k[e + 1] - call.cu_k[e];
    for (int64_t r = 0; r < queries; ++r) {
      q_document.push_back(static_cast<int64_t>(e));
      q_position.push_back(call.causal ? r + keys - queries : keys);
    }
    for (int64_t c = 0; c < keys; ++c) {
      k_document.push_back(static_cast<int64_t>(e));
      k_position.push_back(c);
    }
  }
  auto on_device = [&](const std::vector<int64_t>& values) {
    return torch::tensor(values, torch::kInt64).to(device);
  };
  return {{on_device(q_document), on_device(q_position)},
          {on_device(k_document), on_device(k_position)}};
}

class BlockwiseKernel : public VarlenKernel {
 public:
  bool Accepts(const Tensor&) const override { return true; }

  AttentionResult Forward(const Tensor& q, const Tensor& k, const Tensor& v, const VarlenCall& call,
                          double scale) const override {
    const auto [q_layout, k_layout] = EntryLayouts(call, q.device());
    return BlockwiseAttentionForward(q, k, v, q_layout, k_layout, scale);
  }

  AttentionGrads Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& out, const Tensor& lse, const VarlenCall& call,
                          double scale) const override {
    const auto [q_layout, k_layout] = EntryLayouts(call, q.device());
    return BlockwiseAttentionBackward(dout, q, k, v, out, lse, q_layout, k_layout, scale);
  }
};

// The keys and values in the plan's order; order is undefined when they are in it already (one
// process: the queries' own keys), which saves the copies.
struct SortedKeys {
  Tensor order, keys, values;
};

SortedKeys SortKeys(const VarlenPlan& plan, const Tensor& k, const Tensor& v) {
  bool in_order = static_cast<int64_t>(plan.key_order.size()) == k.size(0);
  for (size_t i = 0; in_order && i < plan.key_order.size(); ++i) {
    in_order = plan.key_order[i] == static_cast<int64_t>(i);
  }
  if (in_order) return {Tensor(), k, v};
  const Tensor order = torch::tensor(plan.key_order, torch::kInt64).to(k.device());
  return {order, k.index_select(0, order), v.index_select(0, order)};
}

// One call over every query: its results are the whole results, without copies.
bool OneCallForAll(const VarlenPlan& plan, int64_t queries) {
  return plan.calls.size() == 1 && plan.calls[0].q_begin == 0 &&
         plan.calls[0].cu_q.back() == queries;
}

std::vector<int64_t> ToVector(const Tensor& t) {
  const Tensor cpu = t.to(torch::kCPU, torch::kInt64).contiguous();
  return std::vector<int64_t>(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + cpu.numel());
}

class VarlenPartial : public PartialAttention {
 public:
  explicit VarlenPartial(std::shared_ptr<const VarlenKernel> kernel) : kernel_(std::move(kernel)) {}

  AttentionResult Forward(const Tensor& q, const Tensor& k, const Tensor& v,
                          const TokenLayout& q_layout, const TokenLayout& k_layout,
                          double scale) const override {
    const std::shared_ptr<const std::optional<VarlenPlan>> plan = Plan(q, q_layout, k_layout);
    if (!plan->has_value()) {
      return BlockwisePartialAttention().Forward(q, k, v, q_layout, k_layout, scale);
    }
    return PlannedAttentionForward(q, k, v, **plan, scale, *kernel_);
  }

  AttentionGrads Backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& out, const Tensor& lse, const TokenLayout& q_layout,
                          const TokenLayout& k_layout, double scale) const override {
    const std::shared_ptr<const std::optional<VarlenPlan>> plan = Plan(q, q_layout, k_layout);
    if (!plan->has_value()) {
      return BlockwisePartialAttention().Backward(dout, q, k, v, out, lse, q_layout, k_layout,
                                                  scale);
    }
    return PlannedAttentionBackward(dout, q, k, v, out, lse, **plan, scale, *kernel_);
  }

 private:
  // The plan for these layouts, or none where the kernel does not take q.
  std::shared_ptr<const std::optional<VarlenPlan>> Plan(const Tensor& q,
                                                        const TokenLayout& q_layout,
                                                        const TokenLayout& k_layout) const {
    static const auto* const kNone = new std::shared_ptr<const std::optional<VarlenPlan>>(
        std::make_shared<const std::optional<VarlenPlan>>());
    if (q.size(0) == 0 || !kernel_->Accepts(q)) return *kNone;
    const std::lock_guard<std::mutex> lock(mutex_);
    const Tensor* layouts[] = {&q_layout.document, &q_layout.position, &k_layout.document,
                               &k_layout.position};
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      bool same = true;
      for (int i = 0; i < 4; ++i) same = same && it->layouts[i].Is(*layouts[i]);
      if (!same) continue;
      std::rotate(kept_.begin(), it, it + 1);  // the most recent first
      return kept_.front().plan;
    }
    KeptPlan fresh;
    for (int i = 0; i < 4; ++i) fresh.layouts[i] = TensorSnapshot(*layouts[i]);
    fresh.plan = std::make_shared<const std::optional<VarlenPlan>>(
        PlanVarlenAttention(ToVector(q_layout.document), ToVector(q_layout.position),
                            ToVector(k_layout.document), ToVector(k_layout.position)));
    kept_.insert(kept_.begin(), fresh);
    if (kept_.size() > kKeptPlans) kept_.pop_back();
    return fresh.plan;
  }

  // Enough for a ring step per rank of the largest cp groups trained on.
  static constexpr size_t kKeptPlans = 16;

  struct KeptPlan {
    TensorSnapshot layouts[4];  // q's document and position, then k's
    std::shared_ptr<const std::optional<VarlenPlan>> plan;
  };

  std::shared_ptr<const VarlenKernel> kernel_;
  mutable std::mutex mutex_;
  mutable std::vector<KeptPlan> kept_;  // the plans made last, the most recent first
};

}  // namespace

std::shared_ptr<const VarlenKernel> BlockwiseVarlenKernel() {
  return std::make_shared<BlockwiseKernel>();
}

AttentionResult PlannedAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const VarlenPlan& plan, double scale,
                                        const VarlenKernel& kernel) {
  torch::NoGradGuard no_grad;
  const SortedKeys sorted = SortKeys(plan, k, v);
  auto run = [&](const VarlenCall& call) {
    return kernel.Forward(q.narrow(0, call.q_begin, call.cu_q.back()),
                          sorted.keys.narrow(0, call.k_begin, call.cu_k.back()),
                          sorted.values.narrow(0, call.k_begin, call.cu_k.back()), call, scale);
  };
  if (OneCallForAll(plan, q.size(0))) return run(plan.calls[0]);
  AttentionResult result{torch::zeros_like(q), torch::full({q.size(1), q.size(0)},
                                                           -std::numeric_limits<float>::infinity(),
                                                           q.options().dtype(torch::kFloat))};
  for (const VarlenCall& call : plan.calls) {
    const AttentionResult part = run(call);
    result.out.narrow(0, call.q_begin, call.cu_q.back()).copy_(part.out);
    result.lse.narrow(1, call.q_begin, call.cu_q.back()).copy_(part.lse);
  }
  return result;
}

AttentionGrads PlannedAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                        const Tensor& v, const Tensor& out, const Tensor& lse,
                                        const VarlenPlan& plan, double scale,
                                        const VarlenKernel& kernel) {
  torch::NoGradGuard no_grad;
  const SortedKeys sorted = SortKeys(plan, k, v);
  // Summed in float32: a key may serve several calls.
  const auto f32 = k.options().dtype(torch::kFloat);
  Tensor dq = OneCallForAll(plan, q.size(0)) ? Tensor() : torch::zeros_like(q);
  Tensor dk = torch::zeros(sorted.keys.sizes(), f32);
  Tensor dv = torch::zeros(sorted.values.sizes(), f32);
  for (const VarlenCall& call : plan.calls) {
    const int64_t queries = call.cu_q.back(), key_count = call.cu_k.back();
    const AttentionGrads part = kernel.Backward(
        dout.narrow(0, call.q_begin, queries), q.narrow(0, call.q_begin, queries),
        sorted.keys.narrow(0, call.k_begin, key_count),
        sorted.values.narrow(0, call.k_begin, key_count), out.narrow(0, call.q_begin, queries),
        lse.narrow(1, call.q_begin, queries), call, scale);
    if (dq.defined()) {
      dq.narrow(0, call.q_begin, queries).copy_(part.dq);
    } else {
      dq = part.dq.to(q.scalar_type());
    }
    dk.narrow(0, call.k_begin, key_count).add_(part.dk);
    dv.narrow(0, call.k_begin, key_count).add_(part.dv);
  }
  if (sorted.order.defined()) {
    // Back to the input rows; padding rows get zero.
    auto unsort = [&](const Tensor& grad, const Tensor& like) {
      std::vector<int64_t> size = grad.sizes().vec();
      size[0] = like.size(0);
      return torch::zeros(size, f32).index_copy_(0, sorted.order, grad);
    };
    dk = unsort(dk, k);
    dv = unsort(dv, v);
  }
  return {dq, dk, dv};
}

std::shared_ptr<const PartialAttention> VarlenPartialAttention(
    std::shared_ptr<const VarlenKernel> kernel) {
  return std::make_shared<VarlenPartial>(std::move(kernel));
}

}  // namespace prolong::attention
