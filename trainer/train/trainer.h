// One optimizer step of ProLong training on one rank: forward and backward over the rank's
// micro-batches, gradient reduction across ranks, clipping, AdamW with a scheduled rate.
//
// The loss is the exact token average over the global batch. Each rank computes
//   loss_r = (sum of cross-entropy over its loss-masked tokens) / global_target_tokens
// where global_target_tokens (from the datamixer) counts the masked tokens of every dp and cp
// rank and every micro-batch of the step; the global loss is the sum of the loss_r, which is the
// mean over all masked tokens. Its gradient is the sum over ranks of the gradients of loss_r, so
// gradients are all-reduced with SUM (not averaged) over the world group: context-parallel ranks
// of one replica hold partial gradients of the same parameters just as data-parallel replicas
// do. Micro-batches accumulate into .grad before the reduction. ProLong's own code divided by a
// running average of per-device counts, an approximation; no rank here needs to know how the
// tokens are spread. The trainer checks, before any compute, that the ranks' masks add up to
// global_target_tokens.
//
// Gradients are summed in flat buckets (parallel/gradient_reduction.h). By default the sums
// start during the last micro-batch's backward pass, a bucket as soon as all its gradients are
// final, and are waited for after it; earlier micro-batches only accumulate, as their gradients
// are not final. overlap_grad_reduce = false reduces the same buckets after backward instead,
// with the same result to the bit.
//
// Every rank must start from identical parameters (same seed or checkpoint); identical reduced
// gradients then keep them identical, and grad norm, loss and the non-finite decision are the
// same on every rank. How the model runs across ranks (context-parallel attention, activation
// checkpointing, gradient buckets, ZeRO-1, sharded weights) is Parallelize's
// (trainer/parallel/parallelize.h): the Trainer receives a parallelized model and drives its step.
//
// Thread-safety: a Trainer is used from one thread; all ranks call Step in the same order.
#ifndef PROLONG_TRAINER_TRAIN_TRAINER_H_
#define PROLONG_TRAINER_TRAIN_TRAINER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "trainer/model/parameter_parts.h"
#include "trainer/parallel/parallelize.h"
#include "trainer/train/lr_schedule.h"
#include "trainer/train/step_input.h"
#include "trainer/train/trainer_options.h"

namespace prolong::train {

struct StepMetrics {
  // Optimizer steps this trainer has run, counting this one (skipped steps included), and the
  // step's index within the current schedule.
  int64_t step = 0;
  int64_t stage_step = 0;
  // The global mean cross-entropy over masked tokens; the same on every rank.
  double loss = 0;
  // Global gradient norm before clipping.
  double grad_norm = 0;
  double lr = 0;
  int64_t target_tokens = 0;  // global
  int64_t tokens = 0;         // global input tokens
  // Global (query, key) pairs causal attention attends to: a token at position p sees the p + 1
  // tokens of its document up to itself (positions run 0, 1, 2... in each document, as the
  // datamixer sends them), wherever context parallelism puts the keys. For MFU
  // (model/llama_flops.h).
  int64_t attention_pairs = 0;
  bool skipped = false;
  // This process's peak resident memory so far (getrusage), bytes.
  int64_t peak_rss_bytes = 0;
  // On a GPU, the most bytes its caching allocator has held allocated so far; 0 on the CPU.
  int64_t peak_device_bytes = 0;
  double seconds = 0;
};

class Trainer {
 public:
  // `model` comes from Parallelize; the schedule is the stage's. INVALID_ARGUMENT naming the
  // option.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(parallel::ParallelModel model,
                                                         const TrainerOptions& options,
                                                         const LrSchedule& schedule);

  // Trains on this rank's part of one global batch and steps the optimizer.
  // INVALID_ARGUMENT (on every rank, naming the rank) for a malformed input: tensor shapes or
  // dtypes, ids outside the vocabulary, cp ranks with different micro-batch counts, masks that
  // do not add up to global_target_tokens. INTERNAL for a non-finite loss or gradient norm
  // unless skip_nonfinite. On error nothing is updated and gradients are cleared.
  absl::StatusOr<StepMetrics> Step(const StepInput& input);

  // Starts a new stage's schedule at its step 0; AdamW's moments are kept (ProLong stage 2).
  absl::Status ResetSchedule(const LrSchedule& schedule);
  // Drops AdamW's moments and step counts (a stage with reset_optimizer_state).
  void ResetOptimizerState();
  // Checkpoints hold whole parameters and whole AdamW state whatever the sharding, so a run
  // resumes with or without it, at any size. Around a save (the model and optimizer() then
  // read by SaveCheckpoint and ExtractAdamWState on world rank 0):
  //   PrepareToSave(); [rank 0 saves]; ShardState();
  // With sharding these are collectives of every rank; without, they do nothing. A load into
  // the model and optimizer() (LoadCheckpoint, ReadOptimizerState and RestoreAdamWState) needs
  // no collective: each rank reads what it keeps, with parameter_parts() and
  // KeepsOptimizerStateOf.
  //
  // World rank 0 holds the whole model (on the CPU with sharded weights) and every parameter's
  // AdamW state, as one process would.
  void PrepareToSave();
  // Each rank keeps only its share again: its shards with sharded weights, its parameters'
  // AdamW state with ZeRO-1.
  void ShardState();
  // With sharded weights, what each parameter holds of the whole (LoadOptions::parts); null
  // otherwise.
  const model::ParameterParts* parameter_parts() const;
  // False for a parameter (by its named_parameters() name) whose optimizer state another rank
  // keeps, with shard_optimizer_state; true otherwise. Lets a checkpoint load read only this
  // rank's share (LoadOptions::optimizer_parameters).
  bool KeepsOptimizerStateOf(const std::string& parameter) const {
    return model_.data_parallel->KeepsOptimizerStateOf(parameter);
  }
  // Continues a run resumed from a checkpoint: `steps` optimizer steps taken so far and the
  // current schedule's step, as the checkpoint's trainer state records them. INVALID_ARGUMENT
  // for a negative count or stage_step > steps.
  absl::Status SetProgress(int64_t steps, int64_t stage_step);

  int64_t steps() const { return steps_; }
  int64_t stage_step() const { return stage_step_; }
  const LrSchedule& schedule() const { return schedule_; }
  const parallel::ParallelModel& model() const { return model_; }
  // Two groups: weight-decayed matrices, then undecayed vectors, each with all its parameters
  // (sharded or not).
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  const torch::optim::AdamW& optimizer() const { return *optimizer_; }

 private:
  Trainer(parallel::ParallelModel model, const TrainerOptions& options, const LrSchedule& schedule);
  // Also sets the global tokens and attention pairs of `metrics`.
  absl::Status CheckInputs(const StepInput& input, StepMetrics* metrics);
  void ClearGradients();

  parallel::ParallelModel model_;
  TrainerOptions options_;
  LrSchedule schedule_;
  std::vector<torch::Tensor> parameters_;  // Trainable, in named_parameters() order.
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t steps_ = 0;
  int64_t stage_step_ = 0;
};

// A building block of Step, exposed for tests.

// torch.nn.utils.clip_grad_norm_: returns the global L2 norm of the gradients and, when it
// exceeds max_norm > 0, scales them by max_norm / (norm + 1e-6). Non-finite norms scale nothing.
// With `shards` (collective), each member holds a disjoint part of the gradients (sharded
// weights) and the norm is of them all.
double ClipGradNorm(const std::vector<torch::Tensor>& parameters, double max_norm,
                    comm::Communicator* shards = nullptr);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_TRAINER_H_
