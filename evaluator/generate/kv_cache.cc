#include "evaluator/generate/kv_cache.h"

#include <algorithm>
#include <limits>

#include "torch/torch.h"
#include "trainer/attention/partial_attention.h"

#ifdef PROLONG_CUDA
#include "trainer/attention/fused_attention.h"
#endif

namespace prolong::evaluator::generate {
namespace {

using torch::Tensor;

// Attention of a prefill chunk to its slot's keys: the trainer's partial attention, which
// takes queries and keys with layouts of their own (flash attention's varlen kernel on a GPU).
const attention::PartialAttention& LocalAttention(const Tensor& q) {
#ifdef PROLONG_CUDA
  if (q.is_cuda()) return attention::FlashPartialAttention();
#endif
  (void)q;
  return attention::BlockwisePartialAttention();
}

}  // namespace

KvCache::KvCache(const model::LlamaConfig& config, int64_t slots, int64_t capacity,
                 const torch::Device& device, torch::ScalarType dtype)
    : slots_(slots), capacity_(capacity) {
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    keys_.push_back(
        torch::zeros({slots, capacity, config.num_key_value_heads, config.head_dim}, options));
    values_.push_back(torch::zeros_like(keys_.back()));
  }
}

int64_t KvCache::bytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < keys_.size(); ++i) total += keys_[i].nbytes() + values_[i].nbytes();
  return total;
}

void KvCache::Attach(model::LlamaForCausalLM& model) {
  const auto& layers = model.model->decoder_layers();
  TORCH_CHECK(layers.size() == keys_.size(), "the cache was made for ", keys_.size(),
              " layers, the model has ", layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i]->self_attn->set_core(
        [this, i](const Tensor& q, const Tensor& k, const Tensor& v,
                  const attention::TokenLayout& /*layout: the runs say the same*/,
                  double scale) { return Attend(i, q, k, v, scale); });
  }
}

Tensor KvCache::Attend(size_t layer, const Tensor& q, const Tensor& k, const Tensor& v,
                       double scale) {
  torch::NoGradGuard no_grad;
  Tensor& keys = keys_[layer];
  Tensor& values = values_[layer];
  int64_t token = 0;
  bool one_token_each = true;
  for (const SlotRun& run : runs_) {
    TORCH_CHECK(run.slot >= 0 && run.slot < slots_ && run.first >= 0 && run.count >= 1 &&
                    run.first + run.count <= capacity_,
                "slot run (", run.slot, ", ", run.first, ", ", run.count, ") outside the cache's ",
                slots_, " slots of ", capacity_, " positions");
    keys[run.slot].narrow(0, run.first, run.count).copy_(k.narrow(0, token, run.count));
    values[run.slot].narrow(0, run.first, run.count).copy_(v.narrow(0, token, run.count));
    token += run.count;
    one_token_each = one_token_each && run.count == 1;
  }
  TORCH_CHECK(token == q.size(0), "the step's runs hold ", token, " tokens, the pass ", q.size(0));
  const int64_t heads = q.size(1), kv_heads = keys.size(2), dim = keys.size(3);
  const auto index = torch::TensorOptions().dtype(torch::kInt64).device(q.device());

  if (one_token_each && runs_.size() > 1) {
    // A decoding step: every slot's one query against its keys at once, the shorter slots'
    // positions past their length masked; float32 softmax as the blockwise kernel does.
    const int64_t batch = static_cast<int64_t>(runs_.size());
    std::vector<int64_t> slot_ids, lengths;
    for (const SlotRun& run : runs_) {
      slot_ids.push_back(run.slot);
      lengths.push_back(run.first + 1);
    }
    const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
    bool leading = true;  // slots 0, 1, ..., batch - 1: a view, no copy
    for (int64_t b = 0; b < batch; ++b) leading = leading && slot_ids[b] == b;
    auto gather = [&](const Tensor& cache) {
      const Tensor prefix = cache.narrow(1, 0, longest);
      return leading ? prefix.narrow(0, 0, batch)
                     : prefix.index_select(0, torch::tensor(slot_ids, index));
    };
    const Tensor k_slots = gather(keys).permute({0, 2, 3, 1});    // [B, Hkv, D, L]
    const Tensor v_slots = gather(values).permute({0, 2, 1, 3});  // [B, Hkv, L, D]
    const Tensor q_groups = q.view({batch, kv_heads, heads / kv_heads, dim});
    Tensor scores = torch::matmul(q_groups, k_slots).to(torch::kFloat32).mul_(scale);
    const Tensor beyond = torch::arange(longest, index).unsqueeze(0) >=
                          torch::tensor(lengths, index).unsqueeze(1);  // [B, L]
    scores.masked_fill_(beyond.view({batch, 1, 1, longest}),
                        -std::numeric_limits<float>::infinity());
    const Tensor probabilities = torch::softmax(scores, -1).to(v_slots.scalar_type());
    return torch::matmul(probabilities, v_slots).reshape({batch, heads, dim}).to(q.scalar_type());
  }

  // Prefill: each run's queries against its slot's keys up to the run's last position.
  std::vector<Tensor> outs;
  token = 0;
  for (const SlotRun& run : runs_) {
    const int64_t end = run.first + run.count;
    const attention::TokenLayout q_layout{torch::zeros({run.count}, index),
                                          torch::arange(run.first, end, index)};
    const attention::TokenLayout k_layout{torch::zeros({end}, index), torch::arange(end, index)};
    const attention::AttentionResult result =
        LocalAttention(q).Forward(q.narrow(0, token, run.count), keys[run.slot].narrow(0, 0, end),
                                  values[run.slot].narrow(0, 0, end), q_layout, k_layout, scale);
    outs.push_back(result.out.to(q.scalar_type()));
    token += run.count;
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs);
}

}  // namespace prolong::evaluator::generate
