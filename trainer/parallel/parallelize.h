// The one place that parallelizes a model, after torchtitan's parallelize_llama: Parallelize
// takes a built model, this rank's process groups and a ParallelPlan, and applies them in this
// order:
//   1. device and precision: the model moves to `device`; bf16 runs the step under autocast
//      (autocast_guard.h) while weights, gradients and AdamW state stay float32;
//   2. the attention core: with a cp group above 1, ContextParallelAttention over it with the
//      plan's scheme (attending locally through flash attention's varlen kernel on a GPU);
//      else on a GPU the fused kernel the plan names; else the blockwise default stays;
//   3. activation checkpointing of every decoder layer, full or selective, around whatever
//      attention step 2 installed (activation_checkpointing.h); with sharded weights, each
//      layer's weights are gathered through it (fully_sharded.h), which shards them here;
//   4. the data-parallel wrapping: gradients summed over the world group in buckets during or
//      after the last backward pass, AdamW whole or ZeRO-1 sharded, or the sharded weights'
//      reductions (data_parallel.h).
// The model never knows: steps 2 and 3 go through its extension points (AttentionCore,
// LayerCall) and step 4 sits outside it, in the Trainer's step.
#ifndef PROLONG_TRAINER_PARALLEL_PARALLELIZE_H_
#define PROLONG_TRAINER_PARALLEL_PARALLELIZE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/parallel/data_parallel.h"
#include "trainer/parallel/parallel_plan.h"

namespace prolong::parallel {

// A model with its plan applied, and what the training step needs besides it.
struct ParallelModel {
  std::shared_ptr<model::LlamaForCausalLM> model;
  comm::ProcessGroups* groups = nullptr;  // null for one process
  c10::Device device = c10::kCPU;
  bool bf16_autocast = false;
  std::unique_ptr<DataParallel> data_parallel;
  // What attends, for logs: "blockwise", a fused kernel's name, or "context-parallel ring over
  // 4 ranks (local varlen-flash)".
  std::string attention;
};

// `groups` is null for one process; otherwise it holds world, dp and cp and must outlive the
// result. The plan's kAuto choices must be made first (ResolveAuto: they depend on the
// sequence length). INVALID_ARGUMENT naming the plan's field or the groups' problem.
absl::StatusOr<ParallelModel> Parallelize(std::shared_ptr<model::LlamaForCausalLM> model,
                                          comm::ProcessGroups* groups, const ParallelPlan& plan,
                                          const c10::Device& device);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_PARALLELIZE_H_
