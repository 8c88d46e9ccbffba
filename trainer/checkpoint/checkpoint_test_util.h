// A tiny Llama and a training step on random tokens, shared by the checkpoint tests and the
// crash helper. Header-only so that it adds no LibTorch translation unit.
#ifndef PROLONG_TRAINER_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
#define PROLONG_TRAINER_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_

#include <cstdint>
#include <memory>

#include "torch/nn/functional/loss.h"
#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "trainer/model/llama.h"
#include "trainer/model/llama_config.h"

namespace prolong::checkpoint::testing {

inline constexpr int64_t kTokens = 16;

// hidden 32, 2 layers, vocab 64, grouped-query attention.
inline model::LlamaConfig TinyConfig() {
  model::LlamaConfig config;
  config.vocab_size = 64;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 8;
  config.max_position_embeddings = 128;
  config.bos_token_id = 0;
  config.eos_token_ids = {1};
  return config;
}

inline std::unique_ptr<torch::optim::AdamW> MakeAdamW(model::LlamaForCausalLM& model,
                                                      bool amsgrad = false) {
  return std::make_unique<torch::optim::AdamW>(
      model.parameters(),
      torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).weight_decay(0.1).amsgrad(amsgrad));
}

// One optimizer step on next-token prediction over random tokens drawn from the global CPU
// generator (so that the generator's state matters to what comes next).
inline void TrainStep(model::LlamaForCausalLM& model, torch::optim::AdamW& optimizer) {
  const torch::Tensor ids = torch::randint(0, model.config().vocab_size, {kTokens + 1});
  const attention::TokenLayout layout{torch::zeros({kTokens}, torch::kInt64),
                                      torch::arange(kTokens, torch::kInt64)};
  optimizer.zero_grad();
  const torch::Tensor hidden = model.forward(ids.slice(0, 0, kTokens), layout);
  const torch::Tensor loss =
      torch::nn::functional::cross_entropy(model.Logits(hidden, 0, kTokens), ids.slice(0, 1));
  loss.backward();
  optimizer.step();
}

}  // namespace prolong::checkpoint::testing

#endif  // PROLONG_TRAINER_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
