// lm_head and cross-entropy fused over blocks of tokens, so T x vocab logits never exist at
// once (ProLong's LOGIT_BLOCK_SIZE): forward keeps one log-sum-exp per token, backward
// recomputes each block's logits from it. At 64K tokens and a 128K vocabulary the full float32
// logits would take 32 GiB; a 2,048-token block takes 1 GiB.
//
// Thread-safe: no state.
#ifndef PROLONG_TRAINER_TRAIN_BLOCKED_CROSS_ENTROPY_H_
#define PROLONG_TRAINER_TRAIN_BLOCKED_CROSS_ENTROPY_H_

#include <cstdint>

#include "torch/types.h"
#include "trainer/train/trainer_options.h"

namespace prolong::train {

// The SUM over tokens t of loss_mask[t] * -log softmax(hidden[t] W^T)[targets[t]], a float32
// scalar, differentiable in `hidden` [T, H] and `weight` [V, H] (lm_head's). targets int64 [T];
// loss_mask [T] bool or any number type (a per-token weight; tokens weighted 0 may carry any
// target, 0..V-1 or not). Logits are computed in the inputs' dtype and turned float32 for the
// softmax, as Hugging Face's `logits.float()`; the weight gradient is accumulated over blocks in
// float32. Invalid arguments (shapes, dtypes, a weighted target outside [0, V), block_size < 1)
// throw c10::Error naming the argument.
torch::Tensor BlockedCrossEntropySum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, const torch::Tensor& loss_mask,
                                     int64_t block_size = kDefaultLogitBlockSize);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_BLOCKED_CROSS_ENTROPY_H_
