#include "trainer/parallel/parallel_plan.h"

#include <string>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::parallel {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParallelPlanTest, AutoCheckpointsFromSixteenKTokensAndTrainsInBf16OnGpus) {
  const ParallelPlan automatic;
  EXPECT_EQ(ResolveAuto(automatic, 16384, false).activation_checkpointing,
            ActivationCheckpointing::kFull);
  EXPECT_EQ(ResolveAuto(automatic, 8192, false).activation_checkpointing,
            ActivationCheckpointing::kOff);
  EXPECT_EQ(ResolveAuto(automatic, 8192, false).precision, Precision::kFp32);
  EXPECT_EQ(ResolveAuto(automatic, 8192, true).precision, Precision::kBf16);

  // Choices already made stay.
  ParallelPlan chosen;
  chosen.activation_checkpointing = ActivationCheckpointing::kSelective;
  chosen.precision = Precision::kFp32;
  const ParallelPlan resolved = ResolveAuto(chosen, 100, true);
  EXPECT_EQ(resolved.activation_checkpointing, ActivationCheckpointing::kSelective);
  EXPECT_EQ(resolved.precision, Precision::kFp32);
  chosen.activation_checkpointing = ActivationCheckpointing::kOff;
  EXPECT_EQ(ResolveAuto(chosen, 1 << 20, false).activation_checkpointing,
            ActivationCheckpointing::kOff);
}

TEST(ParallelPlanTest, ShardedWeightsCheckpointEveryLayerAndSplitTheWorld) {
  ParallelPlan sharded;
  sharded.shard_weights = true;
  EXPECT_EQ(ResolveAuto(sharded, 1024, false).activation_checkpointing,
            ActivationCheckpointing::kFull);
  EXPECT_OK(CheckWeightSharding(ResolveAuto(sharded, 1024, false), 4));
  sharded.activation_checkpointing = ActivationCheckpointing::kOff;
  EXPECT_THAT(CheckWeightSharding(sharded, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("activation_checkpointing must be on")));
  sharded.activation_checkpointing = ActivationCheckpointing::kSelective;
  for (const int group : {0, 1, 2, 4}) {
    sharded.shard_group_size = group;
    EXPECT_OK(CheckWeightSharding(sharded, 4)) << group;
  }
  for (const int group : {-1, 3, 8}) {
    sharded.shard_group_size = group;
    EXPECT_THAT(CheckWeightSharding(sharded, 4),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("shard_group_size (" + std::to_string(group) +
                                   ") must divide the world size (4)")));
  }
}

TEST(ParallelPlanTest, NamesRoundTrip) {
  for (const std::string& name : ActivationCheckpointingNames()) {
    ASSERT_OK_AND_ASSIGN(const ActivationCheckpointing parsed, ParseActivationCheckpointing(name));
    EXPECT_EQ(ActivationCheckpointingName(parsed), name);
  }
  for (const std::string& name : PrecisionNames()) {
    ASSERT_OK_AND_ASSIGN(const Precision parsed, ParsePrecision(name));
    EXPECT_EQ(PrecisionName(parsed), name);
  }
  EXPECT_EQ(ActivationCheckpointingNames(),
            (std::vector<std::string>{"auto", "off", "on", "selective"}));
  EXPECT_EQ(PrecisionNames(), (std::vector<std::string>{"auto", "fp32", "bf16"}));
  EXPECT_THAT(ParseActivationCheckpointing("some"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected one of auto, off, on, selective")));
  EXPECT_THAT(ParsePrecision("fp16"), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("expected one of auto, fp32, bf16")));
}

}  // namespace
}  // namespace prolong::parallel
