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
#include "trainer/parallel/autocast_guard.h"
#include "trainer/parallel/fully_sharded.h"
#include "trainer/train/blocked_cross_entropy.h"

#ifdef PROLONG_CUDA
#include "c10/cuda/CUDACachingAllocator.h"
#endif

namespace prolong::train {
namespace {

using torch::Tensor;

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

double ClipGradNorm(const std::vector<Tensor>& parameters, double max_norm,
                    comm::Communicator* shards) {
  std::vector<Tensor> norms;
  for (const Tensor& p : parameters) {
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat32).norm());
  }
  double norm = 0;
  if (shards == nullptr) {
    if (norms.empty()) return 0;
    norm = torch::stack(norms).norm().item<double>();
  } else {
    // Squares add over the members' disjoint parts.
    Tensor squares = torch::zeros({1}, torch::kFloat64);
    if (!norms.empty()) squares += torch::stack(norms).to(torch::kFloat64).square().sum().cpu();
    shards->AllReduceSum(squares);
    norm = std::sqrt(squares.item<double>());
  }
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

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(parallel::ParallelModel model,
                                                         const TrainerOptions& options,
                                                         const LrSchedule& schedule) {
  if (model.model == nullptr || model.data_parallel == nullptr) {
    return absl::InvalidArgumentError("model must come from parallel::Parallelize");
  }
  RETURN_IF_ERROR(ValidateTrainerOptions(options));
  RETURN_IF_ERROR(ValidateLrSchedule(schedule));
  return std::unique_ptr<Trainer>(new Trainer(std::move(model), options, schedule));
}

Trainer::Trainer(parallel::ParallelModel model, const TrainerOptions& options,
                 const LrSchedule& schedule)
    : model_(std::move(model)), options_(options), schedule_(schedule) {
  std::vector<Tensor> decayed, undecayed;
  for (const auto& item : model_.model->named_parameters()) {
    const Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    parameters_.push_back(p);
    (p.dim() >= 2 ? decayed : undecayed).push_back(p);
  }
  auto group_options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(schedule_.peak_lr)
            .betas({options_.adamw.beta1, options_.adamw.beta2})
            .eps(options_.adamw.epsilon)
            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  param_groups.emplace_back(decayed, group_options(options_.adamw.weight_decay));
  param_groups.emplace_back(undecayed, group_options(0));
  optimizer_ = std::make_unique<torch::optim::AdamW>(param_groups);
}

absl::Status Trainer::ResetSchedule(const LrSchedule& schedule) {
  RETURN_IF_ERROR(ValidateLrSchedule(schedule));
  schedule_ = schedule;
  stage_step_ = 0;
  return absl::OkStatus();
}

void Trainer::ResetOptimizerState() { optimizer_->state().clear(); }

void Trainer::PrepareToSave() { model_.data_parallel->GatherState(*optimizer_); }

void Trainer::ShardState() { model_.data_parallel->ShardState(*optimizer_); }

const model::ParameterParts* Trainer::parameter_parts() const {
  return model_.data_parallel->sharded();
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
  const int64_t vocab = model_.model->config().vocab_size;
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
  comm::ProcessGroups* groups = model_.groups;
  if (groups == nullptr) {
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
  comm::Communicator& world = *groups->world;
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
  const int cp_size = groups->cp->size();
  // Sharded weights gather the root unit per micro-batch over ranks of every replica.
  const bool sharded = model_.data_parallel->sharded() != nullptr;
  int64_t all_targets = 0, all_tokens = 0, all_pairs = 0;
  for (int r = 0; r < world.size(); ++r) {
    all_targets += row(r)[1].item<int64_t>();
    all_tokens += row(r)[2].item<int64_t>();
    all_pairs += row(r)[5].item<int64_t>();
    const int first = r / cp_size * cp_size;  // cp rank 0 of r's replica
    if (sharded && row(r)[3].item<int64_t>() != row(0)[3].item<int64_t>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "with sharded weights every rank needs the same number of micro-batches: "
          "rank 0 has ",
          row(0)[3].item<int64_t>(), ", rank ", r, " has ", row(r)[3].item<int64_t>()));
    }
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

  model::LlamaForCausalLM& model = *model_.model;
  parallel::DataParallel& data_parallel = *model_.data_parallel;
  const torch::Device& device = model_.device;
  const double denominator = static_cast<double>(input.global_target_tokens);
  double loss_sum = 0;
  try {
    for (size_t i = 0; i < input.micro_batches.size(); ++i) {
      const MicroBatch& batch = input.micro_batches[i];
      const attention::TokenLayout layout{batch.layout.document.to(device),
                                          batch.layout.position.to(device)};
      data_parallel.BeforeForward();
      Tensor sum;
      {
        // Forward only, as torch.autocast is used: backward replays the forward's dtypes, and
        // checkpointed layers cast again as they recompute (activation_checkpointing.cc).
        const parallel::AutocastGuard autocast(device.type(), model_.bf16_autocast);
        const Tensor hidden = model.forward(batch.input_ids.to(device), layout);
        sum = BlockedCrossEntropySum(hidden, model.lm_head_weight(), batch.target_ids.to(device),
                                     batch.loss_mask.to(device), options_.logit_block_size);
      }
      // Only the last pass leaves final gradients to start reducing.
      if (i + 1 == input.micro_batches.size()) data_parallel.BeforeLastBackward();
      (sum / denominator).backward();
      data_parallel.AfterBackward();
      loss_sum += sum.item<double>();
    }
  } catch (const c10::Error& e) {
    data_parallel.Abandon();
    ClearGradients();
    return absl::InternalError(
        absl::StrCat("forward or backward failed: ", e.what_without_backtrace()));
  }

  // The buckets first: some may have started during backward, and every rank must start the
  // world group's collectives in the same order.
  data_parallel.ReduceGradients();
  Tensor global_loss = torch::tensor({loss_sum}, torch::kFloat64);
  if (model_.groups != nullptr) model_.groups->world->AllReduceSum(global_loss);
  metrics.loss = global_loss.item<double>() / denominator;
  metrics.grad_norm =
      ClipGradNorm(parameters_, options_.grad_clip_norm, data_parallel.gradient_norm_group());
  metrics.lr = LearningRate(schedule_, stage_step_);
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
    data_parallel.Step(*optimizer_);
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
