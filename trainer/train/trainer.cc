#include "trainer/train/trainer.h"

#include <sys/resource.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/parallel/context_parallel_attention.h"
#include "trainer/train/activation_checkpointing.h"
#include "trainer/train/autocast_guard.h"

#ifdef PROLONG_CUDA
#include "c10/cuda/CUDACachingAllocator.h"
#include "trainer/attention/fused_attention.h"
#endif

namespace prolong::train {
namespace {

using torch::Tensor;

absl::Status ValidateOptions(const TrainerOptions& options) {
  RETURN_IF_ERROR(ValidateLrSchedule(options.schedule));
  const AdamWOptions& adamw = options.adamw;
  for (const auto& [name, beta] : {std::pair<const char*, double>{"adamw.beta1", adamw.beta1},
                                   std::pair<const char*, double>{"adamw.beta2", adamw.beta2}}) {
    if (!(beta >= 0 && beta < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be in [0, 1), got ", beta));
    }
  }
  if (!(adamw.epsilon >= 0 && std::isfinite(adamw.epsilon))) {
    return absl::InvalidArgumentError(
        absl::StrCat("adamw.epsilon must be finite and >= 0, got ", adamw.epsilon));
  }
  if (!(adamw.weight_decay >= 0 && std::isfinite(adamw.weight_decay))) {
    return absl::InvalidArgumentError(
        absl::StrCat("adamw.weight_decay must be finite and >= 0, got ", adamw.weight_decay));
  }
  if (!(options.grad_clip_norm >= 0 && std::isfinite(options.grad_clip_norm))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grad_clip_norm must be finite and >= 0 (0: off), got ", options.grad_clip_norm));
  }
  if (options.logit_block_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("logit_block_size must be >= 1, got ", options.logit_block_size));
  }
  if (options.bucket_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bucket_bytes must be >= 1, got ", options.bucket_bytes));
  }
  return absl::OkStatus();
}

// ZeRO-1 moves parameters and moments through flat buffers of one dtype.
absl::Status CheckShardable(const std::vector<Tensor>& parameters) {
  for (const Tensor& p : parameters) {
    if (p.scalar_type() != parameters.front().scalar_type() ||
        p.device() != parameters.front().device()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shard_optimizer_state needs every trainable parameter in one dtype on one device; "
          "found ",
          c10::toString(parameters.front().scalar_type()), " on ",
          parameters.front().device().str(), " and ", c10::toString(p.scalar_type()), " on ",
          p.device().str()));
    }
  }
  return absl::OkStatus();
}

// A message for the first problem of one micro-batch, empty if none.
std::string CheckMicroBatch(const MicroBatch& batch, int64_t vocab) {
  const Tensor& ids = batch.input_ids;
  if (!ids.defined() || ids.dim() != 1 || ids.scalar_type() != torch::kInt64) {
    return "input_ids must be int64 [T]";
  }
  const int64_t tokens = ids.size(0);
  for (const auto& [name, tensor, dtype] :
       {std::tuple<const char*, const Tensor&, torch::ScalarType>{"target_ids", batch.target_ids,
                                                                  torch::kInt64},
        {"loss_mask", batch.loss_mask, torch::kBool},
        {"layout.document", batch.layout.document, torch::kInt64},
        {"layout.position", batch.layout.position, torch::kInt64}}) {
    if (!tensor.defined() || tensor.dim() != 1 || tensor.size(0) != tokens ||
        tensor.scalar_type() != dtype) {
      return absl::StrCat(name, " must be ", c10::toString(dtype), " [", tokens,
                          "] like input_ids");
    }
  }
  if (tokens == 0) return "";
  if (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab) {
    return absl::StrCat("input_ids must be in [0, ", vocab, ")");
  }
  const Tensor targets = batch.target_ids.masked_select(batch.loss_mask);
  if (targets.numel() > 0 &&
      (targets.min().item<int64_t>() < 0 || targets.max().item<int64_t>() >= vocab)) {
    return absl::StrCat("target_ids of masked tokens must be in [0, ", vocab, ")");
  }
  return "";
}

int64_t PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB.
}

int64_t PeakDeviceBytes(const torch::Device& device) {
#ifdef PROLONG_CUDA
  if (device.is_cuda()) {
    // Index 0 of each statistic is the total over the allocator's pools.
    return c10::cuda::CUDACachingAllocator::getDeviceStats(device.index()).allocated_bytes[0].peak;
  }
#endif
  return 0;
}

}  // namespace

double ClipGradNorm(const std::vector<Tensor>& parameters, double max_norm) {
  std::vector<Tensor> norms;
  for (const Tensor& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat32).norm());
  }
  if (norms.empty()) return 0;
  const double norm = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && std::isfinite(norm)) {
    const double coefficient = max_norm / (norm + 1e-6);
    if (coefficient < 1) {
      torch::NoGradGuard no_grad;
      for (const Tensor& p : parameters) {
        if (p.grad().defined()) p.grad().mul_(coefficient);
      }
    }
  }
  return norm;
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(
    std::shared_ptr<model::LlamaForCausalLM> model, comm::ProcessGroups* groups,
    const TrainerOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  if (groups != nullptr &&
      (groups->world == nullptr || groups->dp == nullptr || groups->cp == nullptr)) {
    return absl::InvalidArgumentError("groups must hold world, dp and cp communicators");
  }
  RETURN_IF_ERROR(ValidateOptions(options));
  if (groups != nullptr && options.shard_optimizer_state && groups->world->size() > 1) {
    std::vector<Tensor> trainable;
    for (const Tensor& p : model->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    RETURN_IF_ERROR(CheckShardable(trainable));
  }
  return std::unique_ptr<Trainer>(new Trainer(std::move(model), groups, options));
}

Trainer::Trainer(std::shared_ptr<model::LlamaForCausalLM> model, comm::ProcessGroups* groups,
                 const TrainerOptions& options)
    : model_(std::move(model)), groups_(groups), options_(options) {
  std::vector<Tensor> decayed, undecayed;
  for (const auto& item : model_->named_parameters()) {
    const Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    parameters_.push_back(p);
    (p.dim() >= 2 ? decayed : undecayed).push_back(p);
  }
  auto group_options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(options_.schedule.peak_lr)
            .betas({options_.adamw.beta1, options_.adamw.beta2})
            .eps(options_.adamw.epsilon)
            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  param_groups.emplace_back(decayed, group_options(options_.adamw.weight_decay));
  param_groups.emplace_back(undecayed, group_options(0));
  optimizer_ = std::make_unique<torch::optim::AdamW>(param_groups);
  if (groups_ != nullptr && options_.overlap_grad_reduce) {
    overlapped_ = std::make_unique<OverlappedGradientReduction>(parameters_, groups_->world.get(),
                                                                options_.bucket_bytes);
  }
  if (groups_ != nullptr && options_.shard_optimizer_state && groups_->world->size() > 1) {
    sharding_ = std::make_unique<OptimizerSharding>(parameters_, groups_->world.get(),
                                                    options_.bucket_bytes);
    size_t i = 0;
    for (const auto& item : model_->named_parameters()) {
      if (!item.value().requires_grad()) continue;
      if (!sharding_->owns(i)) others_parameters_.insert(item.key());
      ++i;
    }
  }

  if (groups_ != nullptr && groups_->cp->size() > 1) {
    comm::Communicator* cp = groups_->cp.get();
    const parallel::CpScheme scheme = options_.cp_scheme;
    const attention::PartialAttention* local = &attention::BlockwisePartialAttention();
#ifdef PROLONG_CUDA
    if (options_.cp_varlen_flash) local = &attention::FlashPartialAttention();
#endif
    auto context_parallel =
        std::make_shared<parallel::ContextParallelAttention>(cp, scheme, *local);
    model_->SetAttentionCore(
        [context_parallel](const Tensor& q, const Tensor& k, const Tensor& v,
                           const attention::TokenLayout& layout,
                           double scale) { return (*context_parallel)(q, k, v, layout, scale); });
  }
}

absl::Status Trainer::ResetSchedule(const LrSchedule& schedule) {
  RETURN_IF_ERROR(ValidateLrSchedule(schedule));
  options_.schedule = schedule;
  stage_step_ = 0;
  return absl::OkStatus();
}

void Trainer::ResetOptimizerState() { optimizer_->state().clear(); }

void Trainer::GatherOptimizerState() {
  if (sharding_ != nullptr) sharding_->GatherState(*optimizer_);
}

void Trainer::ShardOptimizerState() {
  if (sharding_ != nullptr) sharding_->DropOthersState(*optimizer_);
}

absl::Status Trainer::SetProgress(int64_t steps, int64_t stage_step) {
  if (steps < 0 || stage_step < 0 || stage_step > steps) {
    return absl::InvalidArgumentError(absl::StrCat("progress: steps ", steps, " and stage_step ",
                                                   stage_step,
                                                   " must be >= 0, stage_step <= steps"));
  }
  steps_ = steps;
  stage_step_ = stage_step;
  return absl::OkStatus();
}

void Trainer::ClearGradients() {
  for (Tensor& p : parameters_) p.mutable_grad() = Tensor();
}

absl::Status Trainer::CheckInputs(const StepInput& input, StepMetrics* metrics) {
  std::string problem;
  if (input.global_target_tokens < 1) {
    problem = absl::StrCat("global_target_tokens must be >= 1, got ", input.global_target_tokens);
  }
  int64_t targets = 0, tokens = 0, pairs = 0;
  const int64_t vocab = model_->config().vocab_size;
  for (size_t i = 0; i < input.micro_batches.size() && problem.empty(); ++i) {
    const MicroBatch& batch = input.micro_batches[i];
    const std::string error = CheckMicroBatch(batch, vocab);
    if (!error.empty()) {
      problem = absl::StrCat("micro_batches[", i, "].", error);
      break;
    }
    targets += batch.loss_mask.sum().item<int64_t>();
    tokens += batch.input_ids.size(0);
    // A token at position p attends to the p + 1 tokens of its document up to itself.
    pairs += batch.layout.position.sum().item<int64_t>() + batch.input_ids.size(0);
  }
  const int64_t micro_batches = static_cast<int64_t>(input.micro_batches.size());
  if (groups_ == nullptr) {
    if (!problem.empty()) return absl::InvalidArgumentError(problem);
    if (targets != input.global_target_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("global_target_tokens is ", input.global_target_tokens,
                       " but the loss masks select ", targets, " tokens"));
    }
    metrics->tokens = tokens;
    metrics->attention_pairs = pairs;
    return absl::OkStatus();
  }

  // Every rank learns every rank's verdict and counts, so all return the same status and none is
  // left waiting in a collective.
  comm::Communicator& world = *groups_->world;
  const int rank = world.rank();
  const Tensor all =
      world
          .AllGather(torch::tensor({int64_t{!problem.empty()}, targets, tokens, micro_batches,
                                    input.global_target_tokens, pairs},
                                   torch::kInt64))
          .view({world.size(), 6});
  const auto row = [&](int r) { return all[r]; };
  for (int r = 0; r < world.size(); ++r) {
    if (row(r)[0].item<int64_t>() != 0) {
      return absl::InvalidArgumentError(
          r == rank
              ? absl::StrCat("rank ", rank, ": ", problem)
              : absl::StrCat("rank ", r, "'s input is invalid (its own Step error says why)"));
    }
  }
  const int cp_size = groups_->cp->size();
  int64_t all_targets = 0, all_tokens = 0, all_pairs = 0;
  for (int r = 0; r < world.size(); ++r) {
    all_targets += row(r)[1].item<int64_t>();
    all_tokens += row(r)[2].item<int64_t>();
    all_pairs += row(r)[5].item<int64_t>();
    const int first = r / cp_size * cp_size;  // cp rank 0 of r's replica
    if (row(r)[3].item<int64_t>() != row(first)[3].item<int64_t>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ranks ", first, " and ", r, " share sequences (one cp group) but have ",
          row(first)[3].item<int64_t>(), " and ", row(r)[3].item<int64_t>(), " micro-batches"));
    }
    if (row(r)[4].item<int64_t>() != input.global_target_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("global_target_tokens differs between ranks: ", input.global_target_tokens,
                       " on rank ", rank, ", ", row(r)[4].item<int64_t>(), " on rank ", r));
    }
  }
  if (all_targets != input.global_target_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("global_target_tokens is ", input.global_target_tokens,
                     " but the loss masks of all ranks select ", all_targets, " tokens"));
  }
  metrics->tokens = all_tokens;
  metrics->attention_pairs = all_pairs;
  return absl::OkStatus();
}

absl::StatusOr<StepMetrics> Trainer::Step(const StepInput& input) {
  const absl::Time start = absl::Now();
  ClearGradients();
  StepMetrics metrics;
  RETURN_IF_ERROR(CheckInputs(input, &metrics));
  metrics.target_tokens = input.global_target_tokens;

  const torch::Device device =
      parameters_.empty() ? torch::Device(torch::kCPU) : parameters_.front().device();
  const double denominator = static_cast<double>(input.global_target_tokens);
  double loss_sum = 0;
  try {
    for (size_t i = 0; i < input.micro_batches.size(); ++i) {
      const MicroBatch& batch = input.micro_batches[i];
      const attention::TokenLayout layout{batch.layout.document.to(device),
                                          batch.layout.position.to(device)};
      Tensor sum;
      {
        // Forward only, as torch.autocast is used: backward replays the forward's dtypes, and
        // checkpointed layers cast again as they recompute (activation_checkpointing.cc).
        const AutocastGuard autocast(device.type(), options_.bf16_autocast);
        const Tensor hidden =
            ForwardHidden(*model_, batch.input_ids.to(device), layout,
                          options_.activation_checkpointing, options_.checkpoint_keeps_attention);
        sum = BlockedCrossEntropySum(hidden, model_->lm_head_weight(), batch.target_ids.to(device),
                                     batch.loss_mask.to(device), options_.logit_block_size);
      }
      // Only the last pass leaves final gradients to start reducing.
      if (overlapped_ != nullptr && i + 1 == input.micro_batches.size()) overlapped_->Arm();
      (sum / denominator).backward();
      loss_sum += sum.item<double>();
    }
  } catch (const c10::Error& e) {
    if (overlapped_ != nullptr) overlapped_->Abandon();
    ClearGradients();
    return absl::InternalError(
        absl::StrCat("forward or backward failed: ", e.what_without_backtrace()));
  }

  Tensor global_loss = torch::tensor({loss_sum}, torch::kFloat64);
  if (groups_ != nullptr) {
    // The buckets first: some may have started during backward, and every rank must start the
    // world group's collectives in the same order.
    if (overlapped_ != nullptr) {
      overlapped_->Finish();
    } else {
      AllReduceGradients(parameters_, *groups_->world, options_.bucket_bytes);
    }
    groups_->world->AllReduceSum(global_loss);
  }
  metrics.loss = global_loss.item<double>() / denominator;
  metrics.grad_norm = ClipGradNorm(parameters_, options_.grad_clip_norm);
  metrics.lr = LearningRate(options_.schedule, stage_step_);
  metrics.stage_step = stage_step_;

  if (!std::isfinite(metrics.loss) || !std::isfinite(metrics.grad_norm)) {
    ClearGradients();
    if (!options_.skip_nonfinite) {
      return absl::InternalError(absl::StrCat("non-finite loss ", metrics.loss,
                                              " or gradient norm ", metrics.grad_norm, " at step ",
                                              steps_, "; parameters not updated"));
    }
    PROLONG_LOG(WARNING) << "skipping step " << steps_ << ": loss " << metrics.loss
                         << ", gradient norm " << metrics.grad_norm;
    metrics.skipped = true;
  } else {
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(metrics.lr);
    }
    if (sharding_ != nullptr) {
      // Each rank steps its own parameters with the full clipped gradients, then all take the
      // others' from their owners.
      sharding_->Step(*optimizer_);
      sharding_->BroadcastParameters();
    } else {
      optimizer_->step();
    }
  }
  // A skipped step still consumes its batch and its place in the schedule.
  metrics.step = ++steps_;
  ++stage_step_;
  metrics.peak_rss_bytes = PeakRssBytes();
  metrics.peak_device_bytes = PeakDeviceBytes(device);
  metrics.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return metrics;
}

}  // namespace prolong::train
