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
#include "trainer/attention/attention_memo.h"

namespace prolong::parallel {
namespace {

using attention::AttentionResult;
using attention::TokenLayout;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

// K and V of this rank padded to `rows` as one [2, rows, Hkv, D] tensor, so that a step is one
// exchange.
torch::Tensor KeyValueBlock(const torch::Tensor& k, const torch::Tensor& v, int64_t rows) {
  torch::Tensor block = torch::zeros({2, rows, k.size(1), k.size(2)}, k.options());
  block[0].narrow(0, 0, k.size(0)).copy_(k);
  block[1].narrow(0, 0, v.size(0)).copy_(v);
  return block;
}

class RingAttentionFunction : public torch::autograd::Function<RingAttentionFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& document,
                               const torch::Tensor& position, const GatheredLayouts* layouts,
                               comm::Communicator* cp, double scale,
                               const attention::PartialAttention* local) {
    const Ring ring(cp);
    const int64_t rows = layouts->rows;
    // A checkpointed layer's recomputation may take the result its forward recorded (every rank
    // alike, so all skip the ring's exchanges together).
    std::optional<AttentionResult> merged = attention::ReplayAttention();
    const bool replayed = merged.has_value();
    if (!replayed) {
      const TokenLayout query_layout{document, position};
      torch::Tensor block = KeyValueBlock(k, v, rows);
      torch::Tensor incoming = torch::empty_like(block);
      for (int step = 0; step < ring.size(); ++step) {
        // The next block travels while this one is computed on.
        std::unique_ptr<comm::PendingWork> shift;
        if (step + 1 < ring.size()) shift = ring.Shift(block, incoming);
        const int owner = ring.Owner(step);
        if (layouts->visible[owner]) {
          AttentionResult partial =
              local->Forward(q, block[0], block[1], query_layout, layouts->blocks[owner], scale);
          merged = merged ? attention::MergePartialAttention(*merged, partial) : std::move(partial);
        }
        if (shift != nullptr) {
          shift->Wait();
          std::swap(block, incoming);
        }
      }
    }
    // Every query sees at least itself, so only a rank without tokens has merged nothing.
    const torch::Tensor out = merged ? merged->out.to(q.scalar_type()) : torch::zeros_like(q);
    const torch::Tensor lse =
        merged ? merged->lse
               : torch::full({q.size(1), q.size(0)}, -std::numeric_limits<float>::infinity(),
                             q.options().dtype(torch::kFloat));
    if (!replayed) attention::RecordAttention({out, lse});
    // Then each rank's block layout: the same tensors as in the forward, for what `local`
    // derived from them.
    std::vector<torch::Tensor> saved = {q, k, v, out, lse, document, position};
    std::vector<int64_t> visible;
    for (int r = 0; r < ring.size(); ++r) {
      saved.insert(saved.end(), {layouts->blocks[r].document, layouts->blocks[r].position});
      visible.push_back(layouts->visible[r]);
    }
    ctx->save_for_backward(saved);
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
    auto block_layout = [&](int r) { return TokenLayout{saved[7 + 2 * r], saved[8 + 2 * r]}; };
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
        const attention::AttentionGrads grads = local->Backward(
            dout, q, block[0], block[1], out, lse, query_layout, block_layout(owner), scale);
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
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor RingAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const attention::TokenLayout& layout, const GatheredLayouts& layouts,
                            comm::Communicator* cp, double scale,
                            const attention::PartialAttention& local) {
  return RingAttentionFunction::apply(q, k, v, layout.document, layout.position, &layouts, cp,
                                      scale, &local);
}

}  // namespace prolong::parallel
