#include "trainer/parallel/ring_attention.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "torch/autograd.h"
#include "torch/torch.h"

namespace prolong::parallel {
namespace {

using attention::AttentionResult;
using attention::TokenLayout;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// `local` followed by rows of `value` up to `rows` rows.
torch::Tensor PadRows(const torch::Tensor& local, int64_t rows, double value) {
  std::vector<int64_t> shape = local.sizes().vec();
  shape[0] = rows;
  torch::Tensor padded = torch::full(shape, value, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  return padded;
}

// The most tokens any rank holds: every block is padded to it so that shapes agree.
int64_t MaxRows(comm::Communicator& cp, int64_t rows) {
  return cp.AllGather(torch::tensor({rows}, torch::kInt64)).max().item<int64_t>();
}

// Every rank's key layout, padded to `rows` each, in rank order. Padding keys carry document
// -1, which no query has: they are never attended. Layouts are small, so they are gathered once
// rather than sent round with K and V.
TokenLayout GatherKeyLayouts(comm::Communicator& cp, const TokenLayout& local, int64_t rows) {
  const torch::Tensor all = cp.AllGather(
      torch::stack({PadRows(local.document, rows, -1), PadRows(local.position, rows, 0)}, 1));
  return {all.select(1, 0).contiguous(), all.select(1, 1).contiguous()};
}

TokenLayout RankRows(const TokenLayout& all, int rank, int64_t rows) {
  return {all.document.narrow(0, rank * rows, rows), all.position.narrow(0, rank * rows, rows)};
}

// Whether any query may attend any key: a key is visible iff a query of its document sits at
// or after it. Lets a rank skip a block its queries cannot see (with short documents, most).
bool AnyVisible(const TokenLayout& queries, const TokenLayout& keys) {
  const int64_t tq = queries.document.numel();
  const int64_t tk = keys.document.numel();
  if (tq == 0 || tk == 0) return false;
  // Each token as one number that orders by document, then position: its document numbered
  // densely (whatever the ids) times the span of positions, plus its position's offset.
  const torch::Tensor inverse =
      std::get<1>(at::_unique2(torch::cat({queries.document, keys.document}), /*sorted=*/true,
                               /*return_inverse=*/true, /*return_counts=*/false));
  const torch::Tensor positions = torch::cat({queries.position, keys.position});
  const torch::Tensor offsets = positions - positions.min();
  const int64_t span = offsets.max().item<int64_t>() + 1;
  const torch::Tensor codes = inverse * span + offsets;
  const torch::Tensor query_codes = std::get<0>(torch::sort(codes.narrow(0, 0, tq)));
  // The last query of each key's document sits just before the next document's first code.
  const torch::Tensor key_documents = inverse.narrow(0, tq, tk);
  const torch::Tensor end = torch::searchsorted(query_codes, (key_documents + 1) * span);
  const torch::Tensor last = query_codes.index_select(0, (end - 1).clamp_min(0));
  return end.gt(0).logical_and(last.ge(codes.narrow(0, tq, tk))).any().item<bool>();
}

// The cp group as a ring: a rank sends to the next and receives from the previous one, so after
// `step` shifts it holds the block of rank (rank - step).
class Ring {
 public:
  explicit Ring(comm::Communicator* cp) : cp_(cp), rank_(cp->rank()), size_(cp->size()) {}

  int size() const { return size_; }
  int Owner(int step) const { return (rank_ - step + size_) % size_; }
  // Posts sending `send` to the next rank and receiving `recv` from the previous one.
  std::unique_ptr<comm::PendingWork> Shift(const torch::Tensor& send, torch::Tensor& recv) const {
    return cp_->SendRecv(send, (rank_ + 1) % size_, recv, (rank_ + size_ - 1) % size_);
  }

 private:
  comm::Communicator* cp_;
  int rank_;
  int size_;
};

// K and V of this rank as one [2, rows, Hkv, D] tensor, so that a step is one exchange.
torch::Tensor KeyValueBlock(const torch::Tensor& k, const torch::Tensor& v, int64_t rows) {
  return torch::stack({PadRows(k, rows, 0), PadRows(v, rows, 0)});
}

class RingAttentionFunction : public torch::autograd::Function<RingAttentionFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& document,
                               const torch::Tensor& position, comm::Communicator* cp, double scale,
                               const attention::PartialAttention* local) {
    const Ring ring(cp);
    const int64_t rows = MaxRows(*cp, k.size(0));
    const TokenLayout query_layout{document, position};
    const TokenLayout key_layouts = GatherKeyLayouts(*cp, query_layout, rows);
    torch::Tensor block = KeyValueBlock(k, v, rows);
    torch::Tensor incoming = torch::empty_like(block);
    std::optional<AttentionResult> merged;
    std::vector<int64_t> visible(ring.size(), 0);
    for (int step = 0; step < ring.size(); ++step) {
      // The next block travels while this one is computed on.
      std::unique_ptr<comm::PendingWork> shift;
      if (step + 1 < ring.size()) shift = ring.Shift(block, incoming);
      const int owner = ring.Owner(step);
      const TokenLayout key_layout = RankRows(key_layouts, owner, rows);
      visible[owner] = AnyVisible(query_layout, key_layout);
      if (visible[owner]) {
        AttentionResult partial =
            local->Forward(q, block[0], block[1], query_layout, key_layout, scale);
        merged = merged ? attention::MergePartialAttention(*merged, partial) : std::move(partial);
      }
      if (shift != nullptr) {
        shift->Wait();
        std::swap(block, incoming);
      }
    }
    // Every query sees at least itself, so only a rank without tokens has merged nothing.
    const torch::Tensor out = merged ? merged->out.to(q.scalar_type()) : torch::zeros_like(q);
    const torch::Tensor lse =
        merged ? merged->lse
               : torch::full({q.size(1), q.size(0)}, -std::numeric_limits<float>::infinity(),
                             q.options().dtype(torch::kFloat));
    ctx->save_for_backward(
        {q, k, v, out, lse, document, position, key_layouts.document, key_layouts.position});
    ctx->saved_data["cp"] = reinterpret_cast<int64_t>(cp);
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["local"] = reinterpret_cast<int64_t>(local);
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["visible"] = visible;
    return out;
  }

  // FlashAttention-2's backward is blockwise given the final out and lse: each block's
  // probabilities are exp(scores - lse) and D = rowsum(dout * out) uses the final out. So each
  // step adds the held block's share to dq and to that block's dK and dV, and the block's
  // gradient sums follow it round the ring one step behind, reaching its owner after C shifts.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3],
                        &lse = saved[4];
    const TokenLayout query_layout{saved[5], saved[6]};
    const TokenLayout key_layouts{saved[7], saved[8]};
    auto* cp = reinterpret_cast<comm::Communicator*>(ctx->saved_data["cp"].toInt());
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto* local =
        reinterpret_cast<const attention::PartialAttention*>(ctx->saved_data["local"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    const std::vector<int64_t> visible = ctx->saved_data["visible"].toIntVector();
    const Ring ring(cp);
    const torch::Tensor dout = grad_outputs[0].contiguous();

    torch::Tensor block = KeyValueBlock(k, v, rows);
    torch::Tensor incoming = torch::empty_like(block);
    // Summed in float32, so that the order of C partial sums costs no precision in bf16.
    const auto f32 = block.options().dtype(torch::kFloat);
    torch::Tensor incoming_grads = torch::empty(block.sizes(), f32);
    torch::Tensor dq = torch::zeros(q.sizes(), f32);
    std::unique_ptr<comm::PendingWork> grad_shift;
    for (int step = 0; step < ring.size(); ++step) {
      std::unique_ptr<comm::PendingWork> shift;
      if (step + 1 < ring.size()) shift = ring.Shift(block, incoming);
      const int owner = ring.Owner(step);
      torch::Tensor block_grads;  // [2, rows, Hkv, D]: dK and dV of the held block
      if (visible[owner]) {
        const attention::AttentionGrads grads =
            local->Backward(dout, q, block[0], block[1], out, lse, query_layout,
                            RankRows(key_layouts, owner, rows), scale);
        dq.add_(grads.dq);
        block_grads = torch::stack({grads.dk, grads.dv}).to(torch::kFloat);
      } else {
        block_grads = torch::zeros(block.sizes(), f32);
      }
      // What the ranks that held this block before have added to it.
      if (grad_shift != nullptr) {
        grad_shift->Wait();
        block_grads.add_(incoming_grads);
      }
      if (shift != nullptr) {
        shift->Wait();
        std::swap(block, incoming);
      }
      grad_shift = ring.Shift(block_grads, incoming_grads);
    }
    // The last shift brings this rank's own block back with every rank's share.
    grad_shift->Wait();
    const int64_t local_rows = k.size(0);
    return {dq.to(q.scalar_type()),
            incoming_grads[0].narrow(0, 0, local_rows).to(k.scalar_type()),
            incoming_grads[1].narrow(0, 0, local_rows).to(v.scalar_type()),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor RingAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const attention::TokenLayout& layout, comm::Communicator* cp,
                            double scale, const attention::PartialAttention& local) {
  return RingAttentionFunction::apply(q, k, v, layout.document, layout.position, cp, scale, &local);
}

}  // namespace prolong::parallel
