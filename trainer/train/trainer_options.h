// The trainer's settings, in one struct: the worker's flags fill it (trainer/worker/
// worker_options.h), Parallelize reads `parallel` and the Trainer the rest. The learning-rate
// schedule is the stage's, given apart (lr_schedule.h). No LibTorch here, so launchers can use
// it.
#ifndef PROLONG_TRAINER_TRAIN_TRAINER_OPTIONS_H_
#define PROLONG_TRAINER_TRAIN_TRAINER_OPTIONS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "trainer/parallel/parallel_plan.h"

namespace prolong::train {

// ProLong's AdamW (the RunSpec's OptimizerSpec defaults).
struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double epsilon = 1e-8;
  // Applied to 2-D weights (linear and embedding matrices) only, not to RMSNorm weights (or
  // biases, which Llama has none of), as Hugging Face's Trainer does.
  double weight_decay = 0.1;
};

// Positions whose logits exist at once in the loss (blocked_cross_entropy.h).
inline constexpr int64_t kDefaultLogitBlockSize = 2048;

struct TrainerOptions {
  AdamWOptions adamw;
  // Global gradient-norm clipping after the reduction; 0 turns it off.
  double grad_clip_norm = 1.0;
  int64_t logit_block_size = kDefaultLogitBlockSize;
  // A step whose loss or gradient norm is NaN or infinite: false fails it (INTERNAL, no
  // update); true skips its update and reports `skipped` (the RunSpec's SKIP_BATCH). Either way
  // the parameters and optimizer state are untouched.
  bool skip_nonfinite = false;
  parallel::ParallelPlan parallel;
};

// INVALID_ARGUMENT naming the first field out of range (`parallel` is Parallelize's to check).
absl::Status ValidateTrainerOptions(const TrainerOptions& options);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_TRAINER_OPTIONS_H_
