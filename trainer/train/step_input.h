// What one rank trains on in one global step: its micro-batches (packed sequences as tensors)
// and the token count that makes the loss an exact global token average. Filled from the
// datamixer's batches by batch.h.
#ifndef PROLONG_TRAINER_TRAIN_STEP_INPUT_H_
#define PROLONG_TRAINER_TRAIN_STEP_INPUT_H_

#include <cstdint>
#include <vector>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"

namespace prolong::train {

// One forward and backward: one or more packed sequences (or a cp rank's chunks of them) laid
// end to end. All tensors [T] on the CPU.
struct MicroBatch {
  torch::Tensor input_ids;   // int64
  torch::Tensor target_ids;  // int64; anything where loss_mask is false
  torch::Tensor loss_mask;   // bool: the token's target counts in the loss
  attention::TokenLayout layout;
};

struct StepInput {
  // In order; every cp rank of a replica gets the same number (their collectives pair up).
  std::vector<MicroBatch> micro_batches;
  // Loss-masked tokens of the whole global batch: every dp and cp rank, every micro-batch.
  int64_t global_target_tokens = 0;
};

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_STEP_INPUT_H_
