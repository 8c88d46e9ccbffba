// What the trainer's tests share about models: a tiny Llama and comparisons of parameter-shaped
// tensors. Test-only (the :test_util target is testonly); header-only, so a test compiles
// LibTorch's headers once.
#ifndef PROLONG_TRAINER_MODEL_MODEL_TEST_UTIL_H_
#define PROLONG_TRAINER_MODEL_MODEL_TEST_UTIL_H_

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/model/llama_config.h"

namespace prolong::model::testing {

// Hidden 64, 2 layers, 4 heads of 16, 2 kv heads, SwiGLU 96, vocabulary 128.
inline LlamaConfig TinyLlamaConfig() {
  LlamaConfig c;
  c.vocab_size = 128;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 256;
  c.initializer_range = 0.05;
  return c;
}

// Each parameter's gradient, copied.
inline std::vector<torch::Tensor> Gradients(torch::nn::Module& module) {
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : module.parameters()) grads.push_back(p.grad().clone());
  return grads;
}

// max |actual - expected| <= tolerance * max |expected|, tensor by tensor.
inline void ExpectAllClose(const std::vector<torch::Tensor>& actual,
                           const std::vector<torch::Tensor>& expected, double tolerance,
                           const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    const double scale = std::max(1e-30, expected[i].abs().max().item<double>());
    const double error = (actual[i] - expected[i]).abs().max().item<double>();
    EXPECT_LE(error, tolerance * scale) << what << " " << i << ": difference " << error;
  }
}

}  // namespace prolong::model::testing

#endif  // PROLONG_TRAINER_MODEL_MODEL_TEST_UTIL_H_
