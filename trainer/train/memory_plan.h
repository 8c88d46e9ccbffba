// How many bytes one rank needs to train a model at a sequence length under a parallel layout,
// before any process starts (`prolongctl train --plan-memory`), part by part:
//   - weights, gradients and AdamW's two moments, float32 whatever the precision (the master
//     copy ProLong and FSDP's mixed precision keep): 4 bytes a parameter each, the moments 8;
//     all three divided by the shard group with sharded weights (each parameter's rows padded
//     to a multiple of it), the moments alone by the world with ZeRO-1;
//   - with sharded weights, the whole weights held at once: the root unit (embedding, final
//     norm, lm_head) for the micro-batch, its whole gradients, and one decoder layer's weights
//     (matrices in bfloat16 under mixed precision) with the copies its gradients' reduce-scatter
//     makes, and the next layer's arriving;
//   - kept activations: what the backward needs of the forward of one micro-batch of
//     micro_batch_sequences x seq_len / cp tokens: with checkpointing each layer's float32 input
//     (plus the attention output and log-sum-exp with selective), without it every layer's
//     saved tensors; and the final norm's and the loss's inputs;
//   - one layer's working set: its recomputed saved tensors and the gradients flowing back
//     through it, the most a checkpointed layer's backward holds;
//   - the loss blocks: a block's logits and their gradient, and lm_head's float32 weight
//     gradient the blocked loss accumulates.
// The peak is the larger of two moments: the loss's forward (the gradients held only when an
// earlier micro-batch of the step made them; the root unit's weights whole, no layer's) and the
// backward (the gradients held; a layer's working set and gathered weights or the loss's
// backward, whichever is larger). Tensor sizes follow the model's code
// (trainer/model/llama.cc, trainer/train/blocked_cross_entropy.cc,
// trainer/parallel/fully_sharded.cc): a change there changes them here, and
// memory_plan_test measures the peak against this plan.
#ifndef PROLONG_TRAINER_TRAIN_MEMORY_PLAN_H_
#define PROLONG_TRAINER_TRAIN_MEMORY_PLAN_H_

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "trainer/model/llama_config.h"
#include "trainer/parallel/parallel_plan.h"

namespace prolong::train {

struct MemoryLayout {
  int64_t seq_len = 0;
  int64_t micro_batch_sequences = 1;
  int64_t micro_batches = 1;  // a rank's per step
  int world_size = 1;         // ranks in the gang: dp x cp
  int cp_size = 1;
  // Resolved (ResolveAuto): no kAuto left.
  parallel::ParallelPlan plan;
  int64_t logit_block_size = 2048;
  bool gpu = false;  // the GPU's kernels keep less in places (fused RMSNorm)
};

struct MemoryPlan {
  int64_t parameters = 0;  // of the whole model
  int64_t tokens = 0;      // a rank's per micro-batch
  int64_t weights = 0;
  int64_t gradients = 0;
  int64_t optimizer_state = 0;
  int64_t gathered_weights = 0;  // the most, in backward
  int64_t kept_activations = 0;
  int64_t layer_working_set = 0;
  int64_t loss_blocks = 0;  // the more of forward and backward
  // Everything held at the two moments the peak may be at.
  int64_t forward_peak = 0;
  int64_t backward_peak = 0;

  int64_t peak() const { return std::max(forward_peak, backward_peak); }
};

// INVALID_ARGUMENT naming the field for a layout that cannot run (a sequence that does not
// split over cp, sizes below 1, an unresolved plan).
absl::StatusOr<MemoryPlan> PlanMemory(const model::LlamaConfig& config, const MemoryLayout& layout);

// A table of the parts and the peak in GiB, with the share of `capacity_bytes` (0: none given)
// the peak takes.
std::string DescribeMemoryPlan(const MemoryPlan& plan, int64_t capacity_bytes);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_MEMORY_PLAN_H_
