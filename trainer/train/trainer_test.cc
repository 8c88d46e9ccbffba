#include "trainer/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/plan/rank_layout.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/comm/test_communicators.h"
#include "trainer/model/model_test_util.h"
#include "trainer/train/batch.h"
#include "trainer/train/train_test_data.h"

namespace prolong::train {
namespace {

using comm::testing::DoublingCommunicator;
using comm::testing::OneRankCommunicator;
using model::testing::ExpectAllClose;
using model::testing::Gradients;
using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using torch::Tensor;

constexpr plan::Rank kOneProcess{0, 1, 0, 1};

std::shared_ptr<model::LlamaForCausalLM> TinyModel(uint64_t seed = 3) {
  return *model::CreateLlama(model::testing::TinyLlamaConfig(), seed);
}

StepInput Input(uint64_t seed, int64_t sequences_per_micro_batch,
                const plan::Rank& rank = kOneProcess) {
  return *StepInputFromBatch(testing::RankBatch(testing::MakeGlobalBatch(seed), 0, rank),
                             sequences_per_micro_batch);
}

TrainerOptions Options() {
  TrainerOptions options;
  options.logit_block_size = 64;
  options.parallel.activation_checkpointing = parallel::ActivationCheckpointing::kOff;
  options.parallel.precision = parallel::Precision::kFp32;
  return options;
}

LrSchedule Schedule(int64_t steps = 10) {
  LrSchedule schedule;
  schedule.peak_lr = 1e-3;
  schedule.warmup_fraction = 0;
  schedule.steps = steps;
  return schedule;
}

parallel::ActivationCheckpointing Checkpointing(bool on) {
  return on ? parallel::ActivationCheckpointing::kFull : parallel::ActivationCheckpointing::kOff;
}

std::vector<Tensor> Snapshot(torch::nn::Module& module) {
  std::vector<Tensor> copies;
  for (const Tensor& p : module.parameters()) copies.push_back(p.detach().clone());
  return copies;
}

TEST(TrainerTest, TheLossIsThePlainMeanCrossEntropy) {
  auto model = TinyModel();
  const std::vector<testing::GlobalSequence> batch = testing::MakeGlobalBatch(12);
  const double plain = testing::PlainMeanCrossEntropy(*model, batch);
  auto trainer = *testing::CreateTrainer(model, nullptr, Options(), Schedule());
  const StepInput input =
      *StepInputFromBatch(testing::RankBatch(batch, 0, kOneProcess), /*sequences=*/3);
  ASSERT_EQ(input.micro_batches.size(), 2u);
  const absl::StatusOr<StepMetrics> metrics = trainer->Step(input);
  ASSERT_OK(metrics);
  EXPECT_NEAR(metrics->loss, plain, 1e-6 * plain);
  int64_t targets = 0;
  for (const auto& sequence : batch) {
    for (uint8_t m : sequence.loss_mask) targets += m;
  }
  EXPECT_EQ(metrics->target_tokens, targets);
  EXPECT_EQ(metrics->tokens, testing::kSequences * testing::kSeqLen);
  EXPECT_EQ(metrics->attention_pairs, testing::CausalAttentionPairs(batch));
  EXPECT_EQ(metrics->step, 1);
  EXPECT_EQ(metrics->stage_step, 0);
  EXPECT_DOUBLE_EQ(metrics->lr, 1e-3);
  EXPECT_GT(metrics->grad_norm, 0);
  EXPECT_FALSE(metrics->skipped);
  EXPECT_GT(metrics->peak_rss_bytes, 1 << 20);
  EXPECT_EQ(trainer->steps(), 1);
  EXPECT_EQ(trainer->stage_step(), 1);
}

TEST(TrainerTest, MicroBatchSplitsAndCheckpointingDoNotChangeTheStep) {
  std::vector<std::vector<Tensor>> parameters, gradients;
  std::vector<double> losses;
  for (const auto& [sequences, checkpoint] :
       std::vector<std::pair<int64_t, bool>>{{4, false}, {1, false}, {3, true}}) {
    auto model = TinyModel();
    TrainerOptions options = Options();
    options.parallel.activation_checkpointing = Checkpointing(checkpoint);
    // Keeps Adam from magnifying rounding noise in near-zero gradients (see TrainTwoSteps).
    options.adamw.epsilon = 1e-5;
    auto trainer = *testing::CreateTrainer(model, nullptr, options, Schedule());
    const absl::StatusOr<StepMetrics> metrics = trainer->Step(Input(13, sequences));
    ASSERT_OK(metrics);
    losses.push_back(metrics->loss);
    parameters.push_back(Snapshot(*model));
    gradients.push_back(Gradients(*model));
  }
  for (size_t i = 1; i < parameters.size(); ++i) {
    EXPECT_NEAR(losses[i], losses[0], 1e-6 * losses[0]);
    ExpectAllClose(gradients[i], gradients[0], 1e-5, "gradient");
    ExpectAllClose(parameters[i], parameters[0], 1e-5, "parameter");
  }
}

// bf16 autocast on the CPU (the same guard the GPU path uses): the loss and gradients are
// those of float32 within bfloat16's precision, but not bit for bit, and everything the
// optimizer keeps stays float32; with checkpointing the recomputed layers cast alike, from
// inputs kept in bfloat16.
TEST(TrainerTest, Bf16AutocastKeepsFloat32StateAndStaysCloseToFloat32) {
  std::vector<std::vector<Tensor>> gradients;
  std::vector<double> losses;
  for (const auto& [autocast, checkpoint] :
       std::vector<std::pair<bool, bool>>{{false, false}, {true, false}, {true, true}}) {
    auto model = TinyModel();
    TrainerOptions options = Options();
    options.parallel.precision = autocast ? parallel::Precision::kBf16 : parallel::Precision::kFp32;
    options.parallel.activation_checkpointing = Checkpointing(checkpoint);
    auto trainer = *testing::CreateTrainer(model, nullptr, options, Schedule());
    const absl::StatusOr<StepMetrics> metrics = trainer->Step(Input(14, 2));
    ASSERT_OK(metrics);
    losses.push_back(metrics->loss);
    gradients.push_back(Gradients(*model));
    for (const Tensor& p : model->parameters()) {
      EXPECT_EQ(p.scalar_type(), torch::kFloat32);
      EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
    }
    for (const auto& state : trainer->optimizer().state()) {
      const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*state.second);
      EXPECT_EQ(adam.exp_avg().scalar_type(), torch::kFloat32);
    }
  }
  // bfloat16 keeps 8 bits of mantissa: a few parts in a thousand on the loss.
  EXPECT_NE(losses[1], losses[0]);
  EXPECT_NEAR(losses[1], losses[0], 1e-2 * losses[0]);
  ExpectAllClose(gradients[1], gradients[0], 0.1, "bf16 gradient");
  // The forward is the same; the recomputation starts from the bfloat16-rounded inputs, so the
  // gradients are bfloat16 training's, not the uncheckpointed run's to the bit.
  EXPECT_EQ(losses[2], losses[1]);
  ExpectAllClose(gradients[2], gradients[1], 0.1, "recomputed bf16 gradient");
}

TEST(TrainerTest, AdamWDecaysMatricesButNotNormWeights) {
  auto model = TinyModel();
  TrainerOptions options = Options();
  auto trainer = *testing::CreateTrainer(model, nullptr, options, Schedule());
  auto& groups = trainer->optimizer().param_groups();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamWOptions&>(groups[0].options()).weight_decay(),
                   0.1);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamWOptions&>(groups[1].options()).weight_decay(), 0);
  // 2 layers x 2 norms + the final norm.
  EXPECT_EQ(groups[1].params().size(), 5u);
  for (const Tensor& p : groups[0].params()) EXPECT_EQ(p.dim(), 2);
  const auto betas = static_cast<torch::optim::AdamWOptions&>(groups[0].options()).betas();
  EXPECT_EQ(std::get<0>(betas), 0.9);
  EXPECT_EQ(std::get<1>(betas), 0.95);

  // AdamW's first step by hand: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected to g and g^2:
  // p <- p (1 - lr wd) - lr g / (|g| + eps).
  const auto before = model->named_parameters().values();
  std::vector<Tensor> initial;
  for (const Tensor& p : before) initial.push_back(p.detach().clone());
  const absl::StatusOr<StepMetrics> metrics = trainer->Step(Input(14, 2));
  ASSERT_OK(metrics);
  const double lr = metrics->lr;
  const auto named = model->named_parameters();
  size_t i = 0;
  for (const auto& item : named) {
    const Tensor g = item.value().grad();  // Reduced and clipped; kept after the step.
    const double decay = item.value().dim() >= 2 ? 0.1 : 0.0;
    const Tensor expected = initial[i] * (1 - lr * decay) - lr * g / (g.abs() + 1e-8);
    // Within a float32 rounding of the result (norm weights near 1 round at 1.19e-7).
    const Tensor error = (item.value().detach() - expected).abs();
    EXPECT_TRUE((error <= 1.2e-7 * expected.abs().clamp_min(1)).all().item<bool>())
        << item.key() << ": " << error.max().item<double>();
    ++i;
  }
}

TEST(TrainerTest, ClippingUsesTheGlobalNorm) {
  Tensor a = torch::zeros({2}, torch::requires_grad()),
         b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(ClipGradNorm({a, b}, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8, 1e-6);
  EXPECT_NEAR(ClipGradNorm({a, b}, 2.0), 1.0, 1e-6);  // Under the limit: untouched.
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8, 1e-6);
}

TEST(TrainerTest, TheStepOverlapsGradientReductionWithTheLastBackwardPass) {
  std::vector<std::vector<Tensor>> parameters;
  for (const bool overlap : {false, true}) {
    for (const bool checkpoint : {false, true}) {
      SCOPED_TRACE(absl::StrCat("overlap ", overlap, " checkpointing ", checkpoint));
      std::vector<bool> in_backward;
      comm::ProcessGroups groups;
      groups.world = std::make_unique<OneRankCommunicator>(&in_backward);
      groups.dp = std::make_unique<OneRankCommunicator>();
      groups.cp = std::make_unique<OneRankCommunicator>();
      auto model = TinyModel();
      TrainerOptions options = Options();
      options.parallel.activation_checkpointing = Checkpointing(checkpoint);
      options.parallel.overlap_grad_reduce = overlap;
      options.parallel.bucket_bytes = 16 << 10;
      auto trainer = *testing::CreateTrainer(model, &groups, options, Schedule());
      const absl::StatusOr<StepMetrics> metrics = trainer->Step(Input(13, 2));
      ASSERT_OK(metrics);
      parameters.push_back(Snapshot(*model));
      // One all-reduce per bucket, then the loss's.
      const size_t buckets = trainer->model().data_parallel->gradient_buckets();
      EXPECT_GT(buckets, 2u);
      ASSERT_EQ(in_backward.size(), buckets + 1);
      const int64_t during = std::count(in_backward.begin(), in_backward.end(), true);
      // Every parameter is used in the last micro-batch, so every bucket leaves during it.
      EXPECT_EQ(during, overlap ? static_cast<int64_t>(buckets) : 0);
    }
  }
  // Overlapped or not, the same bits (with and without checkpointing).
  for (size_t i = 0; i < 2; ++i) {
    for (size_t j = 0; j < parameters[i].size(); ++j) {
      EXPECT_TRUE(torch::equal(parameters[i + 2][j], parameters[i][j])) << i << " " << j;
    }
  }
}

TEST(TrainerTest, ShardingNeedsOneParameterDtype) {
  auto model = TinyModel();
  model->model->norm->weight.set_data(model->model->norm->weight.to(torch::kFloat64));
  comm::ProcessGroups groups;
  groups.world = std::make_unique<DoublingCommunicator>();  // two ranks
  groups.dp = std::make_unique<DoublingCommunicator>();
  groups.cp = std::make_unique<OneRankCommunicator>();
  TrainerOptions options = Options();
  options.parallel.shard_optimizer_state = true;
  const auto trainer = testing::CreateTrainer(model, &groups, options, Schedule());
  EXPECT_THAT(trainer, StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("shard_optimizer_state needs every trainable "
                                          "parameter in one dtype")));
  options.parallel.shard_optimizer_state = false;
  EXPECT_OK(testing::CreateTrainer(model, &groups, options, Schedule()));
}

TEST(TrainerTest, ANonFiniteLossFailsTheStepOrSkipsIt) {
  for (bool skip : {false, true}) {
    SCOPED_TRACE(skip);
    auto model = TinyModel();
    {
      torch::NoGradGuard no_grad;
      model->model->norm->weight[3] = NAN;
    }
    TrainerOptions options = Options();
    options.skip_nonfinite = skip;
    auto trainer = *testing::CreateTrainer(model, nullptr, options, Schedule());
    const Tensor embedding = model->model->embed_tokens->weight.detach().clone();
    const absl::StatusOr<StepMetrics> metrics = trainer->Step(Input(15, 4));
    if (skip) {
      ASSERT_OK(metrics);
      EXPECT_TRUE(metrics->skipped);
      EXPECT_TRUE(std::isnan(metrics->loss));
      EXPECT_EQ(trainer->steps(), 1);
    } else {
      EXPECT_THAT(metrics, StatusIs(absl::StatusCode::kInternal, HasSubstr("non-finite loss")));
      EXPECT_EQ(trainer->steps(), 0);
    }
    EXPECT_TRUE(torch::equal(model->model->embed_tokens->weight, embedding));
    EXPECT_TRUE(trainer->optimizer().state().empty());
    EXPECT_FALSE(model->model->embed_tokens->weight.grad().defined());
  }
}

TEST(TrainerTest, InvalidInputsAreRejectedBeforeAnyWork) {
  auto model = TinyModel();
  auto trainer = *testing::CreateTrainer(model, nullptr, Options(), Schedule());
  auto expect = [&](const StepInput& input, const std::string& message) {
    const absl::StatusOr<StepMetrics> metrics = trainer->Step(input);
    EXPECT_THAT(metrics, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)));
    EXPECT_FALSE(model->lm_head->weight.grad().defined());
  };
  StepInput input = Input(16, 2);
  input.global_target_tokens += 1;
  expect(input, "global_target_tokens is");
  input = Input(16, 2);
  input.micro_batches[1].input_ids[5] = 128;
  expect(input, "micro_batches[1].input_ids must be in [0, 128)");
  input = Input(16, 2);
  input.micro_batches[0].loss_mask = input.micro_batches[0].loss_mask.to(torch::kFloat32);
  expect(input, "micro_batches[0].loss_mask must be Bool");
  input = Input(16, 2);
  input.global_target_tokens = 0;
  expect(input, "global_target_tokens must be >= 1");
  EXPECT_EQ(trainer->steps(), 0);

  TrainerOptions options = Options();
  options.logit_block_size = 0;
  EXPECT_NE(testing::CreateTrainer(model, nullptr, options, Schedule())
                .status()
                .message()
                .find("logit_block_size"),
            std::string::npos);
  EXPECT_NE(testing::CreateTrainer(model, nullptr, Options(), Schedule(/*steps=*/0))
                .status()
                .message()
                .find("schedule.steps"),
            std::string::npos);
}

TEST(TrainerTest, ANewStageRestartsTheScheduleAndKeepsTheMoments) {
  auto model = TinyModel();
  auto trainer = *testing::CreateTrainer(model, nullptr, Options(), Schedule(/*steps=*/2));
  std::vector<double> lrs;
  for (uint64_t seed : {17, 18}) lrs.push_back(trainer->Step(Input(seed, 4))->lr);
  EXPECT_DOUBLE_EQ(lrs[0], 1e-3);
  EXPECT_NEAR(lrs[1], 1e-4, 1e-18);
  const size_t states = trainer->optimizer().state().size();
  EXPECT_EQ(states, model->parameters().size());

  LrSchedule stage2;
  stage2.peak_lr = 5e-4;
  stage2.warmup_fraction = 0;
  stage2.steps = 3;
  ASSERT_OK(trainer->ResetSchedule(stage2));
  EXPECT_EQ(trainer->stage_step(), 0);
  const absl::StatusOr<StepMetrics> metrics = trainer->Step(Input(19, 4));
  ASSERT_OK(metrics);
  EXPECT_DOUBLE_EQ(metrics->lr, 5e-4);
  EXPECT_EQ(metrics->step, 3);
  EXPECT_EQ(metrics->stage_step, 0);
  for (const auto& [key, state] : trainer->optimizer().state()) {
    EXPECT_EQ(static_cast<torch::optim::AdamWParamState&>(*state).step(), 3);
  }
  trainer->ResetOptimizerState();
  EXPECT_TRUE(trainer->optimizer().state().empty());
}

TEST(BatchTest, AContextParallelRankGetsItsRowsOfTheGlobalLayout) {
  const std::vector<testing::GlobalSequence> batch = testing::MakeGlobalBatch(20);
  const plan::Rank rank{1, 2, 1, 2};  // Two sequences, chunks 1 and 2 of 4 of each.
  const v1::Batch rank_batch = testing::RankBatch(batch, 7, rank);
  ASSERT_EQ(rank_batch.sequences_size(), 2);
  const absl::StatusOr<StepInput> input = StepInputFromBatch(rank_batch, 2);
  ASSERT_OK(input);
  ASSERT_EQ(input->micro_batches.size(), 1u);
  const MicroBatch& micro = input->micro_batches[0];
  std::vector<int64_t> ids, targets, mask, documents, positions;
  int64_t first_document = 0;
  for (const v1::SequenceSlice& slice : rank_batch.sequences()) {
    const testing::GlobalSequence& sequence = batch[slice.sequence_index()];
    for (const plan::Range& range : plan::ContextParallelSpans(testing::kSeqLen, rank)) {
      for (int64_t t = range.begin; t < range.end; ++t) {
        int64_t piece = 0;
        while (sequence.cu_seqlens[piece + 1] <= t) ++piece;
        ids.push_back(sequence.tokens[t]);
        mask.push_back(sequence.loss_mask[t]);
        targets.push_back(sequence.loss_mask[t] ? sequence.tokens[t + 1] : -1);
        documents.push_back(first_document + piece);
        positions.push_back(t - sequence.cu_seqlens[piece]);
      }
    }
    first_document += sequence.cu_seqlens.size() - 1;
  }
  EXPECT_TRUE(torch::equal(micro.input_ids, torch::tensor(ids)));
  EXPECT_TRUE(torch::equal(micro.loss_mask, torch::tensor(mask).to(torch::kBool)));
  EXPECT_TRUE(torch::equal(micro.layout.document, torch::tensor(documents)));
  EXPECT_TRUE(torch::equal(micro.layout.position, torch::tensor(positions)));
  const Tensor trained = micro.loss_mask;
  EXPECT_TRUE(torch::equal(micro.target_ids.masked_select(trained),
                           torch::tensor(targets).masked_select(trained)));
  EXPECT_EQ(micro.input_ids.size(0), 2 * testing::kSeqLen / 2);
}

TEST(BatchTest, MalformedBatchesNameTheField) {
  v1::Batch batch = testing::RankBatch(testing::MakeGlobalBatch(21), 0, kOneProcess);
  batch.mutable_sequences(1)->mutable_spans(0)->mutable_loss_mask()->pop_back();
  EXPECT_NE(StepInputFromBatch(batch, 1).status().message().find("sequences[1].spans[0].loss_mask"),
            std::string::npos);
  batch = testing::RankBatch(testing::MakeGlobalBatch(21), 0, kOneProcess);
  batch.mutable_sequences(2)->set_cu_seqlens(1, 500);
  EXPECT_NE(StepInputFromBatch(batch, 1).status().message().find("sequences[2].cu_seqlens"),
            std::string::npos);
  EXPECT_FALSE(StepInputFromBatch(batch, 0).ok());
}

}  // namespace
}  // namespace prolong::train
