#include "trainer/parallel/parallelize.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/parallel/activation_checkpointing.h"
#include "trainer/parallel/context_parallel_attention.h"
#include "trainer/parallel/fully_sharded.h"

#ifdef PROLONG_CUDA
#include "trainer/attention/fused_attention.h"
#endif

namespace prolong::parallel {
namespace {

absl::Status CheckPlan(const ParallelPlan& plan) {
  if (plan.activation_checkpointing == ActivationCheckpointing::kAuto) {
    return absl::InvalidArgumentError(
        "plan.activation_checkpointing is auto: ResolveAuto decides it for the stage's sequence "
        "length");
  }
  if (plan.precision == Precision::kAuto) {
    return absl::InvalidArgumentError(
        "plan.precision is auto: ResolveAuto decides it for the device");
  }
  if (plan.bucket_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("plan.bucket_bytes must be >= 1, got ", plan.bucket_bytes));
  }
  return absl::OkStatus();
}

// Step 2: the attention core. Returns what attends, for logs.
std::string InstallAttention(model::LlamaForCausalLM& model, comm::ProcessGroups* groups,
                             const ParallelPlan& plan, const c10::Device& device) {
  if (groups != nullptr && groups->cp->size() > 1) {
    const attention::PartialAttention* local = &attention::BlockwisePartialAttention();
    std::string local_name = "blockwise";
#ifdef PROLONG_CUDA
    if (device.is_cuda()) {
      local = &attention::FlashPartialAttention();
      local_name = std::string(attention::FusedKernelName(attention::FusedKernel::kVarlenFlash));
    }
#endif
    auto context_parallel =
        std::make_shared<ContextParallelAttention>(groups->cp.get(), plan.cp_scheme, *local);
    model.SetAttentionCore(
        [context_parallel](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const attention::TokenLayout& layout,
                           double scale) { return (*context_parallel)(q, k, v, layout, scale); });
    return absl::StrCat("context-parallel ", CpSchemeName(plan.cp_scheme), " over ",
                        groups->cp->size(), " ranks (local ", local_name, ")");
  }
#ifdef PROLONG_CUDA
  if (device.is_cuda()) {
    model.SetAttentionCore(attention::FusedAttentionCore(plan.gpu_attention));
    return std::string(attention::FusedKernelName(plan.gpu_attention));
  }
#endif
  return "blockwise";
}

// The communicators sharded weights split over: the plan's shard groups, or the world.
absl::StatusOr<std::pair<comm::Communicator*, comm::Communicator*>> ShardGroups(
    comm::ProcessGroups& groups, const ParallelPlan& plan) {
  const int world = groups.world->size();
  if (plan.shard_group_size == 0 || plan.shard_group_size == world) {
    return std::make_pair(groups.world.get(), static_cast<comm::Communicator*>(nullptr));
  }
  if (groups.shard == nullptr || groups.replica == nullptr ||
      groups.shard->size() != plan.shard_group_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plan.shard_group_size is ", plan.shard_group_size,
        " but the process groups were joined without shard groups of that size (shard_size)"));
  }
  return std::make_pair(groups.shard.get(), groups.replica.get());
}

}  // namespace

absl::StatusOr<ParallelModel> Parallelize(std::shared_ptr<model::LlamaForCausalLM> model,
                                          comm::ProcessGroups* groups, const ParallelPlan& plan,
                                          const c10::Device& device) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  if (groups != nullptr &&
      (groups->world == nullptr || groups->dp == nullptr || groups->cp == nullptr)) {
    return absl::InvalidArgumentError("groups must hold world, dp and cp communicators");
  }
  RETURN_IF_ERROR(CheckPlan(plan));
  if (groups != nullptr) {
    RETURN_IF_ERROR(CheckCpHeads(plan.cp_scheme, model->config().num_attention_heads,
                                 model->config().num_key_value_heads, groups->cp->size()));
    RETURN_IF_ERROR(CheckWeightSharding(plan, groups->world->size()));
  }

  ParallelModel parallel;
  parallel.groups = groups;
  parallel.device = device;
  // 1. Device and precision.
  model->to(device);
  parallel.bf16_autocast = plan.precision == Precision::kBf16;
  // 2. Attention.
  parallel.attention = InstallAttention(*model, groups, plan, device);
  // 3. Activation checkpointing, through which sharded weights are gathered per layer.
  const bool keep_attention = plan.activation_checkpointing == ActivationCheckpointing::kSelective;
  std::shared_ptr<FullySharded> sharded;
  if (groups != nullptr && plan.shard_weights) {
    ASSIGN_OR_RETURN(const auto shard_groups, ShardGroups(*groups, plan));
    sharded = std::make_shared<FullySharded>(
        *model, shard_groups.first, shard_groups.second,
        plan.precision == Precision::kBf16 ? torch::kBFloat16 : torch::kFloat32);
    model->SetLayerCall([sharded, keep_attention](model::LlamaDecoderLayer& layer,
                                                  const torch::Tensor& x, const torch::Tensor& cos,
                                                  const torch::Tensor& sin,
                                                  const attention::TokenLayout& layout) {
      return CheckpointedLayer(layer, x, cos, sin, layout, keep_attention,
                               sharded->layer_weights(layer));
    });
  } else if (plan.activation_checkpointing != ActivationCheckpointing::kOff) {
    ApplyActivationCheckpointing(*model, keep_attention);
  }
  // 4. Data parallelism.
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  for (const auto& item : model->named_parameters()) {
    if (item.value().requires_grad()) trainable.emplace_back(item.key(), item.value());
  }
  ASSIGN_OR_RETURN(
      parallel.data_parallel,
      DataParallel::Create(std::move(trainable), groups == nullptr ? nullptr : groups->world.get(),
                           plan, std::move(sharded)));
  parallel.model = std::move(model);
  return parallel;
}

}  // namespace prolong::parallel
