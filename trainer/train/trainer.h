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
// Gradients are summed in flat buckets (gradient_reduction.h). By default the sums start during
// the last micro-batch's backward pass, a bucket as soon as all its gradients are final, and
// are waited for after it; earlier micro-batches only accumulate, as their gradients are not
// final. overlap_grad_reduce = false reduces the same buckets after backward instead, with the
// same result to the bit.
//
// Every rank must start from identical parameters (same seed or checkpoint); identical reduced
// gradients then keep them identical, and grad norm, loss and the non-finite decision are the
// same on every rank. With shard_optimizer_state (ZeRO-1, sharded_optimizer.h) each rank keeps
// AdamW's moments for its share of the parameters only, steps those, and receives the others
// from their owners; the parameters are the same to the bit as without sharding.
//
// Thread-safety: a Trainer is used from one thread; all ranks call Step in the same order.
#ifndef PROLONG_TRAINER_TRAIN_TRAINER_H_
#define PROLONG_TRAINER_TRAIN_TRAINER_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/parallel/cp_scheme.h"
#include "trainer/train/blocked_cross_entropy.h"
#include "trainer/train/gradient_reduction.h"
#include "trainer/train/lr_schedule.h"
#include "trainer/train/sharded_optimizer.h"
#include "trainer/train/step_input.h"

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

struct TrainerOptions {
  LrSchedule schedule;
  AdamWOptions adamw;
  // Global gradient-norm clipping after the reduction; 0 turns it off.
  double grad_clip_norm = 1.0;
  // Recompute each decoder layer in backward (see DefaultActivationCheckpointing).
  bool activation_checkpointing = false;
  // With activation_checkpointing, keep each layer's attention output and log-sum-exp so that
  // the recomputation skips attention's forward (selective checkpointing,
  // activation_checkpointing.h): the same gradients, one more [T, heads x head_dim] per layer.
  bool checkpoint_keeps_attention = false;
  // bf16 mixed precision (autocast_guard.h): float32 parameters, gradients and AdamW state,
  // bfloat16 matrix products and attention. The worker turns it on for GPUs.
  bool bf16_autocast = false;
  int64_t logit_block_size = kDefaultLogitBlockSize;
  // How context-parallel attention moves K and V between a cp group's ranks (see
  // trainer/parallel/context_parallel_attention.h); unused without a cp group above 1.
  parallel::CpScheme cp_scheme = parallel::CpScheme::kAllGather;
  // On a GPU in bf16 (a CUDA build; ignored otherwise), context-parallel attention (either
  // scheme) attends to the keys a rank holds through flash attention's varlen kernel
  // (attention::FlashPartialAttention) instead of the blockwise implementation. The worker sets
  // it on every GPU (checked against PyTorch's attention on an H100 by tools/gpu).
  bool cp_varlen_flash = false;
  // Gradients are all-reduced in flat buckets of about this size (DDP's default 25 MB); ZeRO-1
  // moves parameters and optimizer state in rounds of this size per rank.
  int64_t bucket_bytes = 25 << 20;
  // With process groups: start each bucket's all-reduce during the last micro-batch's backward
  // pass instead of after it.
  bool overlap_grad_reduce = true;
  // With process groups of more than one rank: ZeRO-1, each world rank keeps AdamW state for about
  // 1 / world of the parameters (which must then share one dtype and device). optimizer() holds
  // only this rank's share: see GatherOptimizerState and ShardOptimizerState for checkpoints.
  bool shard_optimizer_state = false;
  // A step whose loss or gradient norm is NaN or infinite: false fails it (INTERNAL, no
  // update); true skips its update and reports `skipped` (the RunSpec's SKIP_BATCH). Either way
  // the parameters and optimizer state are untouched.
  bool skip_nonfinite = false;
};

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
  // `groups` is null for a single process; otherwise it must outlive the trainer, and with a cp
  // group larger than 1 every layer's attention becomes ContextParallelAttention over it.
  // INVALID_ARGUMENT naming the option.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(
      std::shared_ptr<model::LlamaForCausalLM> model, comm::ProcessGroups* groups,
      const TrainerOptions& options);

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
  // With shard_optimizer_state, a collective of every rank: world rank 0's optimizer() then
  // holds every parameter's state, as it would without sharding, for ExtractAdamWState; call
  // ShardOptimizerState once it is saved. Otherwise nothing.
  void GatherOptimizerState();
  // With shard_optimizer_state, drops the state of parameters other ranks step: after
  // GatherOptimizerState, and after loading a checkpoint's full state. Otherwise nothing.
  void ShardOptimizerState();
  // False for a parameter (by its named_parameters() name) whose optimizer state another rank
  // keeps, with shard_optimizer_state; true otherwise. Lets a checkpoint load read only this
  // rank's share (LoadOptions::optimizer_parameters).
  bool KeepsOptimizerStateOf(const std::string& parameter) const {
    return others_parameters_.count(parameter) == 0;
  }
  // Continues a run resumed from a checkpoint: `steps` optimizer steps taken so far and the
  // current schedule's step, as the checkpoint's trainer state records them. INVALID_ARGUMENT
  // for a negative count or stage_step > steps.
  absl::Status SetProgress(int64_t steps, int64_t stage_step);

  int64_t steps() const { return steps_; }
  int64_t stage_step() const { return stage_step_; }
  const TrainerOptions& options() const { return options_; }
  // Two groups: weight-decayed matrices, then undecayed vectors, each with all its parameters
  // (sharded or not).
  torch::optim::AdamW& optimizer() { return *optimizer_; }

 private:
  Trainer(std::shared_ptr<model::LlamaForCausalLM> model, comm::ProcessGroups* groups,
          const TrainerOptions& options);
  // Also sets the global tokens and attention pairs of `metrics`.
  absl::Status CheckInputs(const StepInput& input, StepMetrics* metrics);
  void ClearGradients();

  std::shared_ptr<model::LlamaForCausalLM> model_;
  comm::ProcessGroups* groups_;
  TrainerOptions options_;
  std::vector<torch::Tensor> parameters_;  // Trainable, in named_parameters() order.
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<OverlappedGradientReduction> overlapped_;  // with a group and the option
  std::unique_ptr<OptimizerSharding> sharding_;              // likewise
  std::set<std::string> others_parameters_;                  // names of parameters other ranks step
  int64_t steps_ = 0;
  int64_t stage_step_ = 0;
};

// Building blocks of Step, exposed for tests (and AllReduceGradients in gradient_reduction.h).

// torch.nn.utils.clip_grad_norm_: returns the global L2 norm of the gradients and, when it
// exceeds max_norm > 0, scales them by max_norm / (norm + 1e-6). Non-finite norms scale nothing.
double ClipGradNorm(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_TRAINER_H_
