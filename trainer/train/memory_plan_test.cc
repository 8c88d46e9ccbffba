#include "trainer/train/memory_plan.h"

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/model/llama.h"
#include "trainer/train/batch.h"
#include "trainer/train/cpu_memory_meter.h"
#include "trainer/train/train_test_data.h"
#include "trainer/train/trainer.h"

namespace prolong::train {
namespace {

using parallel::ActivationCheckpointing;
using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

// Small enough for a test, large enough that activations, weights and the loss each weigh.
model::LlamaConfig SmallConfig() {
  model::LlamaConfig c;
  c.vocab_size = 8192;
  c.hidden_size = 256;
  c.intermediate_size = 688;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.max_position_embeddings = 8192;
  return c;
}

// Two sequences of `tokens`, a few documents each: one micro-batch each, so the second runs
// with whole gradients, where the plan's peak is.
std::vector<testing::GlobalSequence> Batch(int64_t tokens, int64_t vocab) {
  std::mt19937 random(5);
  std::vector<testing::GlobalSequence> batch(2);
  for (testing::GlobalSequence& sequence : batch) {
    sequence.cu_seqlens = {0, static_cast<int32_t>(tokens / 3), static_cast<int32_t>(tokens)};
    for (int64_t t = 0; t < tokens; ++t) {
      sequence.tokens.push_back(static_cast<uint32_t>(random() % vocab));
      sequence.loss_mask.push_back(t + 1 != tokens / 3 && t + 1 != tokens);
    }
  }
  return batch;
}

// The most bytes LibTorch held during a step after a first one (so that AdamW's moments exist),
// everything from the model's creation on counted.
int64_t MeasuredPeak(const model::LlamaConfig& config, const MemoryLayout& layout) {
  CpuMemoryMeter::Install();
  int64_t peak = 0;
  {
    auto model = model::CreateLlama(config, 3);
    EXPECT_OK(model);
    TrainerOptions options;
    options.parallel = layout.plan;
    options.logit_block_size = layout.logit_block_size;
    LrSchedule schedule;
    schedule.steps = 4;
    auto trainer = testing::CreateTrainer(*model, nullptr, options, schedule);
    EXPECT_OK(trainer);
    const auto input = StepInputFromBatch(
        testing::RankBatch(Batch(layout.seq_len, config.vocab_size), 0, {0, 1, 0, 1}), 1);
    EXPECT_OK(input);
    EXPECT_OK((*trainer)->Step(*input));
    CpuMemoryMeter::ResetPeak();
    EXPECT_OK((*trainer)->Step(*input));
    peak = CpuMemoryMeter::peak_bytes();
  }
  return peak;
}

TEST(MemoryPlanTest, ThePeakOfAStepIsWithinTenPercentOfThePlan) {
  at::set_num_threads(1);
  const model::LlamaConfig config = SmallConfig();
  for (const parallel::Precision precision :
       {parallel::Precision::kFp32, parallel::Precision::kBf16}) {
    for (const ActivationCheckpointing checkpointing :
         {ActivationCheckpointing::kFull, ActivationCheckpointing::kSelective,
          ActivationCheckpointing::kOff}) {
      // Two lengths in float32: the loss's blocks weigh most at the first, a layer at the second.
      for (const int64_t tokens : precision == parallel::Precision::kFp32
                                      ? std::vector<int64_t>{1024, 4096}
                                      : std::vector<int64_t>{4096}) {
        MemoryLayout layout;
        layout.seq_len = tokens;
        layout.micro_batches = 2;  // Batch's two sequences, one a micro-batch
        layout.plan = testing::TestPlan();
        layout.plan.precision = precision;
        layout.plan.activation_checkpointing = checkpointing;
        layout.logit_block_size = 1024;
        ASSERT_OK_AND_ASSIGN(const MemoryPlan plan, PlanMemory(config, layout));
        const int64_t measured = MeasuredPeak(config, layout);
        const double ratio = static_cast<double>(plan.peak()) / static_cast<double>(measured);
        std::printf("%s, %s, %ld tokens: planned / measured peak %.3f\n",
                    std::string(parallel::PrecisionName(precision)).c_str(),
                    std::string(parallel::ActivationCheckpointingName(checkpointing)).c_str(),
                    tokens, ratio);
        EXPECT_NEAR(ratio, 1.0, 0.1)
            << parallel::PrecisionName(precision) << ", "
            << parallel::ActivationCheckpointingName(checkpointing) << " at " << tokens
            << " tokens: measured " << measured << " bytes, planned " << plan.peak() << "\n"
            << DescribeMemoryPlan(plan, 0);
      }
    }
  }
}

TEST(MemoryPlanTest, ShardingDividesWhatEachRankHolds) {
  const model::LlamaConfig config = SmallConfig();
  MemoryLayout layout;
  layout.seq_len = 4096;
  layout.plan = testing::TestPlan();
  layout.plan.activation_checkpointing = ActivationCheckpointing::kFull;
  ASSERT_OK_AND_ASSIGN(const MemoryPlan one, PlanMemory(config, layout));
  EXPECT_EQ(one.weights, 4 * one.parameters);
  EXPECT_EQ(one.optimizer_state, 8 * one.parameters);
  layout.world_size = 4;
  layout.plan.shard_optimizer_state = true;
  ASSERT_OK_AND_ASSIGN(const MemoryPlan zero1, PlanMemory(config, layout));
  EXPECT_EQ(zero1.weights, one.weights);
  EXPECT_EQ(zero1.optimizer_state, one.optimizer_state / 4);
  layout.plan.shard_weights = true;
  ASSERT_OK_AND_ASSIGN(const MemoryPlan sharded, PlanMemory(config, layout));
  EXPECT_EQ(sharded.weights, one.weights / 4) << "every row count here divides by 4";
  EXPECT_EQ(sharded.gradients, one.gradients / 4);
  EXPECT_EQ(sharded.optimizer_state, one.optimizer_state / 4);
  EXPECT_GT(sharded.gathered_weights, 0);
  EXPECT_EQ(sharded.kept_activations, one.kept_activations);
  layout.cp_size = 2;
  ASSERT_OK_AND_ASSIGN(const MemoryPlan split, PlanMemory(config, layout));
  EXPECT_EQ(split.tokens, 2048);
  EXPECT_LT(split.kept_activations, one.kept_activations);
}

TEST(MemoryPlanTest, LayoutsThatCannotRunNameTheField) {
  MemoryLayout layout;
  layout.seq_len = 4096;
  layout.plan = testing::TestPlan();
  layout.world_size = 4;
  layout.cp_size = 3;
  EXPECT_THAT(PlanMemory(SmallConfig(), layout).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cp_size")));
  layout.cp_size = 2;
  layout.seq_len = 4098;
  EXPECT_THAT(PlanMemory(SmallConfig(), layout).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("seq_len")));
  layout.seq_len = 4096;
  layout.plan.shard_weights = true;
  layout.plan.shard_group_size = 3;
  EXPECT_FALSE(PlanMemory(SmallConfig(), layout).ok());
}

}  // namespace
}  // namespace prolong::train
