// How a model is parallelized: what Parallelize (parallelize.h) applies to a built model. The
// sizes come from the process groups (dp x cp ranks); the plan says how: context parallelism's
// scheme, the attention kernel on a GPU, activation checkpointing, mixed precision, and the
// data-parallel wrapping (gradient buckets, their overlap with backward, ZeRO-1). The worker's
// flags fill it (trainer/worker/worker_options.h). No LibTorch here, so launchers can use it.
#ifndef PROLONG_TRAINER_PARALLEL_PARALLEL_PLAN_H_
#define PROLONG_TRAINER_PARALLEL_PARALLEL_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "trainer/attention/fused_kernel.h"
#include "trainer/parallel/cp_scheme.h"

namespace prolong::parallel {

enum class ActivationCheckpointing {
  kAuto,  // "auto": kFull for sequences of kAutoCheckpointingTokens and more, else kOff
  kOff,   // "off"
  // "on": each decoder layer keeps only its input and is run again in backward, for about one
  // more forward of compute (activation_checkpointing.h).
  kFull,
  // "selective": kFull, but each layer also keeps its attention output and log-sum-exp, so the
  // recomputation skips attention's forward, for one more [T, heads x head_dim] per layer.
  kSelective,
};

// The RunSpec's default (ActivationCheckpointing UNSPECIFIED): on from 16K tokens.
inline constexpr int64_t kAutoCheckpointingTokens = 16384;

enum class Precision {
  kAuto,  // "auto": kBf16 on a GPU, kFp32 on the CPU
  kFp32,  // "fp32"
  // "bf16": mixed, as ProLong trained: float32 weights, gradients and AdamW state, bfloat16
  // matrix products and attention (autocast_guard.h).
  kBf16,
};

struct ParallelPlan {
  // How context-parallel attention moves K and V within a cp group (context_parallel_attention.h).
  CpScheme cp_scheme = CpScheme::kAllGather;
  // How a GPU rank that holds whole sequences (cp 1) calls the fused attention kernels; with
  // cp above 1 a GPU attends locally through the varlen flash kernel.
  attention::FusedKernel gpu_attention = attention::kDefaultFusedKernel;
  ActivationCheckpointing activation_checkpointing = ActivationCheckpointing::kAuto;
  Precision precision = Precision::kAuto;
  // Gradients are summed over the ranks in flat buckets of about this size (DDP's default
  // 25 MB); ZeRO-1 moves parameters and optimizer state in rounds of this size per rank.
  int64_t bucket_bytes = 25 << 20;
  // Start each bucket's sum during the step's last backward pass instead of after it (the same
  // bits either way).
  bool overlap_grad_reduce = true;
  // ZeRO-1: each rank keeps AdamW's moments for about 1 / world of the parameters.
  bool shard_optimizer_state = false;
  // ZeRO-3, as FSDP does it: each rank keeps 1 / N of every parameter, of its gradient and of its
  // AdamW moments, and a decoder layer's weights are whole only while it runs
  // (fully_sharded.h). It re-gathers them for backward by running the layer again, so it needs
  // activation checkpointing (kAuto turns it on). Subsumes shard_optimizer_state.
  bool shard_weights = false;
  // With shard_weights, N: the ranks that share one copy of the weights, groups of consecutive
  // ranks replicated across the world (hybrid sharding: shard within a node, replicate across
  // nodes). 0: the whole world.
  int shard_group_size = 0;
};

// INVALID_ARGUMENT naming the field when the plan's weight sharding cannot run on `world_size`
// ranks: a shard_group_size that does not divide it, or shard_weights without activation
// checkpointing.
absl::Status CheckWeightSharding(const ParallelPlan& plan, int world_size);

// The plan with its kAuto choices made for sequences of `seq_len` tokens on a GPU (`gpu`) or
// the CPU; sharded weights always checkpoint.
ParallelPlan ResolveAuto(ParallelPlan plan, int64_t seq_len, bool gpu);

// Names for flags and logs, as the enums' comments give them.
absl::string_view ActivationCheckpointingName(ActivationCheckpointing checkpointing);
std::vector<std::string> ActivationCheckpointingNames();
absl::StatusOr<ActivationCheckpointing> ParseActivationCheckpointing(absl::string_view name);

absl::string_view PrecisionName(Precision precision);
std::vector<std::string> PrecisionNames();
absl::StatusOr<Precision> ParsePrecision(absl::string_view name);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_PARALLEL_PLAN_H_
