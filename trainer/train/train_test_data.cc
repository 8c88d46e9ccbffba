#include "trainer/train/train_test_data.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "datamixer/plan/rank_balance.h"
#include "torch/nn/functional/loss.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/model/model_test_util.h"
#include "trainer/parallel/fully_sharded.h"
#include "trainer/train/batch.h"
#include "trainer/train/trainer.h"

namespace prolong::train::testing {

std::vector<GlobalSequence> MakeGlobalBatch(uint64_t seed) {
  std::mt19937_64 random(seed);
  auto uniform = [&](int64_t low, int64_t high) {  // [low, high]
    return std::uniform_int_distribution<int64_t>(low, high)(random);
  };
  std::vector<GlobalSequence> batch(kSequences);
  for (GlobalSequence& sequence : batch) {
    sequence.cu_seqlens = {0};
    while (sequence.cu_seqlens.back() < kSeqLen) {
      const int64_t roll = uniform(0, 9);
      const int64_t length = roll == 0 ? 1 : roll < 4 ? uniform(2, 12) : uniform(13, 45);
      sequence.cu_seqlens.push_back(
          static_cast<int32_t>(std::min<int64_t>(kSeqLen, sequence.cu_seqlens.back() + length)));
    }
    for (int64_t t = 0; t < kSeqLen; ++t) {
      sequence.tokens.push_back(static_cast<uint32_t>(uniform(0, 127)));
      sequence.loss_mask.push_back(uniform(0, 6) != 0);
    }
    for (size_t d = 1; d < sequence.cu_seqlens.size(); ++d) {
      sequence.loss_mask[sequence.cu_seqlens[d] - 1] = 0;
    }
  }
  return batch;
}

v1::Batch RankBatch(const std::vector<GlobalSequence>& batch, int64_t step,
                    const plan::Rank& rank) {
  v1::Batch out;
  out.set_step(step);
  int64_t targets = 0;
  for (const GlobalSequence& sequence : batch) {
    for (uint8_t m : sequence.loss_mask) targets += m;
  }
  out.set_global_target_tokens(targets);
  // The datamixer's balanced layout, so that gangs train what they would train in a run.
  std::vector<double> costs;
  for (const GlobalSequence& sequence : batch) {
    double cost = 0;
    for (size_t d = 1; d < sequence.cu_seqlens.size(); ++d) {
      const double length = sequence.cu_seqlens[d] - sequence.cu_seqlens[d - 1];
      cost += length * length;
    }
    costs.push_back(cost);
  }
  const absl::StatusOr<std::vector<int64_t>> positions = plan::DataParallelSequences(costs, rank);
  TORCH_CHECK(positions.ok(), positions.status().ToString());
  for (const int64_t i : *positions) {
    const GlobalSequence& global = batch[i];
    v1::SequenceSlice* slice = out.add_sequences();
    slice->set_sequence_index(i);
    const int64_t length = static_cast<int64_t>(global.tokens.size());
    slice->set_sequence_length(length);
    for (int32_t bound : global.cu_seqlens) slice->add_cu_seqlens(bound);
    for (const plan::Range& range : plan::ContextParallelSpans(length, rank)) {
      v1::TokenSpan* span = slice->add_spans();
      span->set_offset(static_cast<int32_t>(range.begin));
      std::string ids(range.size() * sizeof(uint32_t), '\0');
      std::memcpy(ids.data(), global.tokens.data() + range.begin, ids.size());
      span->set_token_ids(ids);
      span->set_loss_mask(std::string(global.loss_mask.begin() + range.begin,
                                      global.loss_mask.begin() + range.end));
      const bool piece_ends = std::find(global.cu_seqlens.begin(), global.cu_seqlens.end(),
                                        range.end) != global.cu_seqlens.end();
      span->set_next_token_id(piece_ends ? 0 : global.tokens[range.end]);
    }
  }
  return out;
}

int64_t CausalAttentionPairs(const std::vector<GlobalSequence>& batch) {
  int64_t pairs = 0;
  for (const GlobalSequence& sequence : batch) {
    for (size_t d = 0; d + 1 < sequence.cu_seqlens.size(); ++d) {
      const int64_t length = sequence.cu_seqlens[d + 1] - sequence.cu_seqlens[d];
      pairs += length * (length + 1) / 2;
    }
  }
  return pairs;
}

double PlainMeanCrossEntropy(model::LlamaForCausalLM& model,
                             const std::vector<GlobalSequence>& batch) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  int64_t count = 0;
  for (const GlobalSequence& sequence : batch) {
    const std::vector<int64_t> bounds(sequence.cu_seqlens.begin(), sequence.cu_seqlens.end());
    const attention::TokenLayout layout = *model::PackedLayout(bounds);
    const torch::Tensor ids =
        torch::tensor(std::vector<int64_t>(sequence.tokens.begin(), sequence.tokens.end()));
    const torch::Tensor logits = model.Logits(model.forward(ids, layout), 0, kSeqLen);
    // Next token within the document; the mask is 0 wherever that does not exist.
    const torch::Tensor targets = torch::roll(ids, -1);
    const torch::Tensor mask =
        torch::tensor(std::vector<int64_t>(sequence.loss_mask.begin(), sequence.loss_mask.end()))
            .to(torch::kFloat64);
    const torch::Tensor losses = torch::nn::functional::cross_entropy(
        logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    sum += (losses.to(torch::kFloat64) * mask).sum().item<double>();
    count += mask.sum().item<int64_t>();
  }
  return sum / static_cast<double>(count);
}

absl::StatusOr<std::unique_ptr<Trainer>> CreateTrainer(
    std::shared_ptr<model::LlamaForCausalLM> model, comm::ProcessGroups* groups,
    const TrainerOptions& options, const LrSchedule& schedule) {
  ASSIGN_OR_RETURN(parallel::ParallelModel parallelized,
                   parallel::Parallelize(std::move(model), groups, options.parallel, c10::kCPU));
  return Trainer::Create(std::move(parallelized), options, schedule);
}

int64_t HeldBytes(const Trainer& trainer) {
  int64_t bytes = 0;
  for (const torch::Tensor& p : trainer.model().model->parameters()) {
    bytes += p.nbytes() + (p.grad().defined() ? p.grad().nbytes() : 0);
  }
  for (const auto& [key, state] : trainer.optimizer().state()) {
    const auto& adamw = static_cast<const torch::optim::AdamWParamState&>(*state);
    bytes += adamw.exp_avg().nbytes() + adamw.exp_avg_sq().nbytes();
  }
  return bytes;
}

parallel::ParallelPlan TestPlan() {
  parallel::ParallelPlan plan;
  plan.activation_checkpointing = parallel::ActivationCheckpointing::kOff;
  plan.precision = parallel::Precision::kFp32;
  plan.bucket_bytes = 64 << 10;
  return plan;
}

absl::StatusOr<RunResult> TrainTwoSteps(uint64_t seed, comm::ProcessGroups* groups,
                                        const plan::Rank& rank, const RunOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<model::LlamaForCausalLM> model,
                   model::CreateLlama(model::testing::TinyLlamaConfig(), seed));
  TrainerOptions trainer_options;
  LrSchedule schedule;
  schedule.peak_lr = 1e-3;
  schedule.warmup_fraction = 0;
  schedule.steps = 4;
  // Adam's update g / (|g| + eps) turns rounding noise d in a gradient element near 0 into an
  // update difference of up to lr * d / eps. Float32 sums in another order give d ~ 2e-9 here, so
  // with eps 1e-8 the odd element of 90K whose gradient happens to be that small moves 2e-5
  // differently in one process and in a gang; eps 1e-5 bounds that at 2e-7. (Gradients are
  // compared directly as well: Adam's first step hardly depends on their scale.)
  trainer_options.adamw.epsilon = 1e-5;
  trainer_options.logit_block_size = 40;  // Several blocks per micro-batch, not dividing it.
  trainer_options.parallel = options.plan;
  ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer,
                   CreateTrainer(model, groups, trainer_options, schedule));
  const bool writer = groups == nullptr || groups->world->rank() == 0;
  int64_t first_step = 0;
  if (!options.resume_from.empty()) {
    checkpoint::TrainerState state;
    checkpoint::LoadOptions load;
    load.restore_rng = false;
    load.optimizer_parameters = [&](const std::string& name) {
      return trainer->KeepsOptimizerStateOf(name);
    };
    load.parts = trainer->parameter_parts();
    RETURN_IF_ERROR(checkpoint::LoadCheckpoint(
        absl::StrCat(options.resume_from, "/", checkpoint::StepDirName(1)), *model,
        trainer->optimizer(), &state, load));
    RETURN_IF_ERROR(trainer->SetProgress(state.step, state.step));
    first_step = state.step;
  }
  RunResult result;
  plan::Rank balanced = rank;
  balanced.micro_batch_sequences = options.sequences_per_micro_batch;
  for (int64_t step = first_step; step < 2; ++step) {
    const v1::Batch batch = RankBatch(MakeGlobalBatch(seed + step), step, balanced);
    ASSIGN_OR_RETURN(const StepInput input,
                     StepInputFromBatch(batch, options.sequences_per_micro_batch));
    ASSIGN_OR_RETURN(const StepMetrics metrics, trainer->Step(input));
    result.losses.push_back(metrics.loss);
    result.grad_norms.push_back(metrics.grad_norm);
    result.lrs.push_back(metrics.lr);
    result.attention_pairs.push_back(metrics.attention_pairs);
    if (step == 0) {
      for (const torch::Tensor& p : model->parameters())
        result.gradients.push_back(p.grad().clone());
    }
    if (step == 0 && !options.save_after_first_step.empty()) {
      trainer->PrepareToSave();
      if (writer) {
        ASSIGN_OR_RETURN(
            const checkpoint::OptimizerState optimizer,
            checkpoint::ExtractAdamWState(trainer->optimizer(), model->named_parameters()));
        checkpoint::TrainerState state;
        state.step = trainer->steps();
        RETURN_IF_ERROR(
            checkpoint::SaveCheckpoint(options.save_after_first_step, *model, optimizer, state)
                .status());
      }
      trainer->ShardState();
      if (groups != nullptr) groups->world->Barrier();  // The checkpoint is there for everyone.
    }
  }
  for (const torch::Tensor& p : model->parameters())
    result.parameters.push_back(p.detach().clone());
  result.held_bytes = HeldBytes(*trainer);
  if (const parallel::FullySharded* sharded = trainer->model().data_parallel->sharded()) {
    result.peak_gathered_bytes = sharded->peak_gathered_bytes();
  }
  result.own_optimizer_states = static_cast<int64_t>(trainer->optimizer().state().size());
  trainer->PrepareToSave();
  if (writer) {
    ASSIGN_OR_RETURN(
        checkpoint::OptimizerState optimizer,
        checkpoint::ExtractAdamWState(trainer->optimizer(), model->named_parameters()));
    result.optimizer_state = std::move(optimizer.tensors);
  }
  return result;
}

}  // namespace prolong::train::testing
