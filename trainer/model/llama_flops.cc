#include "trainer/model/llama_flops.h"

namespace prolong::model {

TrainingFlops LlamaTrainingFlops(const LlamaConfig& config) {
  const double hidden = static_cast<double>(config.hidden_size);
  const double query = static_cast<double>(config.num_attention_heads * config.head_dim);
  const double key_value = static_cast<double>(config.num_key_value_heads * config.head_dim);
  const double layers = static_cast<double>(config.num_hidden_layers);
  const double attention = hidden * query + 2 * hidden * key_value + query * hidden;  // q, k, v, o
  const double mlp = 3 * hidden * static_cast<double>(config.intermediate_size);
  const double lm_head = hidden * static_cast<double>(config.vocab_size);
  TrainingFlops flops;
  flops.per_token = 6 * (layers * (attention + mlp) + lm_head);
  flops.per_attention_pair = 3 * 2 * 2 * query * layers;
  return flops;
}

}  // namespace prolong::model
