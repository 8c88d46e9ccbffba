// Keys and values of earlier tokens for generation, kept per layer so that each new token runs
// through the model once. The cache plugs into the model through its attention cores (one per
// layer, model::LlamaAttention::set_core): the model, RoPE included, is the trainer's own.
//
// Layout: per layer, K and V [slots, capacity, kv_heads, head_dim] in the model's dtype on its
// device; a slot holds one sequence at positions 0, 1, ... A forward pass through an attached
// model runs tokens whose layout.document is their slot and layout.position their position:
// each layer writes the tokens' keys and values at (slot, position), then attends each token
// to its slot's keys at positions up to its own. So a prompt may be prefilled in chunks, and
// one new token of each of many slots decoded in one pass.
//
// Thread-safety: used from one thread, like the model.
#ifndef PROLONG_EVALUATOR_GENERATE_KV_CACHE_H_
#define PROLONG_EVALUATOR_GENERATE_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/model/llama.h"

namespace prolong::evaluator::generate {

// The tokens a forward pass runs for one slot: positions [first, first + count), in order.
struct SlotRun {
  int64_t slot = 0;
  int64_t first = 0;
  int64_t count = 1;
};

class KvCache {
 public:
  // Values kept per cached token: keys and values of every layer's kv heads.
  static int64_t ValuesPerToken(const model::LlamaConfig& config) {
    return 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim;
  }

  // `capacity` positions for each of `slots` sequences, in `dtype` on `device`.
  KvCache(const model::LlamaConfig& config, int64_t slots, int64_t capacity,
          const torch::Device& device, torch::ScalarType dtype);

  // Installs this cache's attention on every layer of `model` (whose config it was made for).
  // Forward passes through the model then go through the cache until the model's cores are
  // set again.
  void Attach(model::LlamaForCausalLM& model);

  // What the next forward pass runs, in the order of its tokens: one run of a slot's
  // consecutive positions (a prefill chunk) or one token of each of several distinct slots (a
  // decoding step). The pass's layout must say the same; positions must be below capacity().
  void SetStep(std::vector<SlotRun> runs) { runs_ = std::move(runs); }

  int64_t slots() const { return slots_; }
  int64_t capacity() const { return capacity_; }
  // Bytes of keys and values held, all layers.
  int64_t bytes() const;

 private:
  torch::Tensor Attend(size_t layer, const torch::Tensor& q, const torch::Tensor& k,
                       const torch::Tensor& v, double scale);

  int64_t slots_;
  int64_t capacity_;
  std::vector<torch::Tensor> keys_;    // per layer [slots, capacity, kv_heads, head_dim]
  std::vector<torch::Tensor> values_;  // likewise
  std::vector<SlotRun> runs_;
};

}  // namespace prolong::evaluator::generate

#endif  // PROLONG_EVALUATOR_GENERATE_KV_CACHE_H_
