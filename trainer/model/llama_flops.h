// How many floating-point operations training a Llama costs: the "model FLOPs" of MFU (PaLM,
// Chowdhery et al. 2022, appendix B), counted from the config. Recomputation by activation
// checkpointing is not counted (it is hardware work, not model work), nor are norms, RoPE,
// softmax and other elementwise operations.
//
// Causal attention is counted by the (query, key) pairs actually attended to, as the document
// mask allows, not as full T x T products: a packed sequence of many short documents does much
// less attention work than one long document of the same length, and MFU must not credit work
// that is never done.
#ifndef PROLONG_TRAINER_MODEL_LLAMA_FLOPS_H_
#define PROLONG_TRAINER_MODEL_LLAMA_FLOPS_H_

#include <cstdint>

#include "trainer/model/llama_config.h"

namespace prolong::model {

struct TrainingFlops {
  // 6 per weight of every matrix product a token goes through (2 forward, 4 backward): the
  // attention and MLP projections of every layer and the lm_head; not the input embedding, a
  // lookup.
  double per_token = 0;
  // Forward: QK^T and PV, 2 FLOPs per multiply-add over heads x head_dim each, in every layer;
  // backward twice that.
  double per_attention_pair = 0;

  // A step's FLOPs: `tokens` input tokens, `attention_pairs` (query, key) pairs attended to.
  double Of(int64_t tokens, int64_t attention_pairs) const {
    return per_token * static_cast<double>(tokens) +
           per_attention_pair * static_cast<double>(attention_pairs);
  }
};

TrainingFlops LlamaTrainingFlops(const LlamaConfig& config);

}  // namespace prolong::model

#endif  // PROLONG_TRAINER_MODEL_LLAMA_FLOPS_H_
