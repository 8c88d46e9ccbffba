// The CPU benchmarks' model: a Llama of 4 layers of width 256 (4 heads of 64, 2 kv heads,
// SwiGLU 688), vocabulary 32000 (tools/bench/train_step_reference.py builds the same in Python).
#ifndef PROLONG_TOOLS_BENCH_BENCH_MODEL_H_
#define PROLONG_TOOLS_BENCH_BENCH_MODEL_H_

#include "trainer/model/llama_config.h"

namespace prolong::bench {

inline model::LlamaConfig BenchLlamaConfig() {
  model::LlamaConfig config;
  config.vocab_size = 32000;
  config.hidden_size = 256;
  config.intermediate_size = 688;
  config.num_hidden_layers = 4;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 64;
  config.rope_theta = 500000;
  config.max_position_embeddings = 65536;
  return config;
}

}  // namespace prolong::bench

#endif  // PROLONG_TOOLS_BENCH_BENCH_MODEL_H_
