#include "trainer/parallel/parallelize.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/parallel/activation_checkpointing.h"
#include "trainer/parallel/context_parallel_attention.h"

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
  }

  ParallelModel parallel;
  parallel.groups = groups;
  parallel.device = device;
  // 1. Device and precision.
  model->to(device);
  parallel.bf16_autocast = plan.precision == Precision::kBf16;
  // 2. Attention.
  parallel.attention = InstallAttention(*model, groups, plan, device);
  // 3. Activation checkpointing.
  if (plan.activation_checkpointing != ActivationCheckpointing::kOff) {
    ApplyActivationCheckpointing(
        *model, plan.activation_checkpointing == ActivationCheckpointing::kSelective);
  }
  // 4. Data parallelism.
  std::vector<std::pair<std::string, torch::Tensor>> trainable;
  for (const auto& item : model->named_parameters()) {
    if (item.value().requires_grad()) trainable.emplace_back(item.key(), item.value());
  }
  ASSIGN_OR_RETURN(parallel.data_parallel,
                   DataParallel::Create(std::move(trainable),
                                        groups == nullptr ? nullptr : groups->world.get(), plan));
  parallel.model = std::move(model);
  return parallel;
}

}  // namespace prolong::parallel
