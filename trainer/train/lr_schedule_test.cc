#include "trainer/train/lr_schedule.h"

#include <cmath>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::train {
namespace {

LrSchedule Schedule(ScheduleShape shape, int64_t steps, double warmup_fraction) {
  LrSchedule s;
  s.peak_lr = 1e-5;
  s.warmup_fraction = warmup_fraction;
  s.shape = shape;
  s.min_lr_ratio = 0.1;
  s.steps = steps;
  return s;
}

TEST(LrScheduleTest, WarmsUpLinearlyFromZero) {
  const LrSchedule s = Schedule(ScheduleShape::kCosine, 100, 0.1);
  EXPECT_EQ(WarmupSteps(s), 10);
  EXPECT_EQ(LearningRate(s, 0), 0);
  EXPECT_DOUBLE_EQ(LearningRate(s, 5), 0.5e-5);
  EXPECT_DOUBLE_EQ(LearningRate(s, 9), 0.9e-5);
  EXPECT_DOUBLE_EQ(LearningRate(s, 10), 1e-5);
}

TEST(LrScheduleTest, WarmupRoundsUpAsHuggingFace) {
  EXPECT_EQ(WarmupSteps(Schedule(ScheduleShape::kCosine, 30, 0.1)), 3);  // 0.1 * 30 is not 3.0
  EXPECT_EQ(WarmupSteps(Schedule(ScheduleShape::kCosine, 25, 0.1)), 3);
  EXPECT_EQ(WarmupSteps(Schedule(ScheduleShape::kCosine, 25, 0)), 0);
  EXPECT_EQ(WarmupSteps(Schedule(ScheduleShape::kCosine, 2, 0.99)), 1);  // Never every step.
}

TEST(LrScheduleTest, CosineEndsAtTheFloorOnTheLastStep) {
  const LrSchedule s = Schedule(ScheduleShape::kCosine, 111, 0.1);  // warmup 12, decay 98 steps
  EXPECT_DOUBLE_EQ(LearningRate(s, 12), 1e-5);
  EXPECT_NEAR(LearningRate(s, 12 + 49), 0.55e-5, 1e-18);  // Halfway: the mean of peak and floor.
  EXPECT_NEAR(LearningRate(s, 110), 1e-6, 1e-18);
  EXPECT_NEAR(LearningRate(s, 500), 1e-6, 1e-18);
  for (int64_t step = 13; step < 111; ++step) {
    EXPECT_LT(LearningRate(s, step), LearningRate(s, step - 1)) << step;
  }
}

TEST(LrScheduleTest, LinearAndConstantShapes) {
  const LrSchedule linear = Schedule(ScheduleShape::kLinear, 11, 0);
  EXPECT_DOUBLE_EQ(LearningRate(linear, 0), 1e-5);
  EXPECT_NEAR(LearningRate(linear, 5), 0.55e-5, 1e-18);
  EXPECT_NEAR(LearningRate(linear, 10), 1e-6, 1e-18);
  const LrSchedule constant = Schedule(ScheduleShape::kConstant, 10, 0.2);
  EXPECT_DOUBLE_EQ(LearningRate(constant, 1), 0.5e-5);
  EXPECT_DOUBLE_EQ(LearningRate(constant, 2), 1e-5);
  EXPECT_DOUBLE_EQ(LearningRate(constant, 9), 1e-5);
}

TEST(LrScheduleTest, AOneStepStageRunsAtPeak) {
  EXPECT_DOUBLE_EQ(LearningRate(Schedule(ScheduleShape::kCosine, 1, 0), 0), 1e-5);
  // Warmup then the last step: the peak wins over the floor.
  EXPECT_DOUBLE_EQ(LearningRate(Schedule(ScheduleShape::kCosine, 2, 0.5), 1), 1e-5);
}

TEST(LrScheduleTest, InvalidFieldsAreNamed) {
  LrSchedule s = Schedule(ScheduleShape::kCosine, 10, 0.1);
  EXPECT_OK(ValidateLrSchedule(s));
  s.warmup_fraction = 1;
  EXPECT_NE(ValidateLrSchedule(s).message().find("schedule.warmup_fraction"), std::string::npos);
  s = Schedule(ScheduleShape::kCosine, 0, 0.1);
  EXPECT_NE(ValidateLrSchedule(s).message().find("schedule.steps"), std::string::npos);
  s = Schedule(ScheduleShape::kCosine, 10, 0.1);
  s.min_lr_ratio = 1.5;
  EXPECT_NE(ValidateLrSchedule(s).message().find("schedule.min_lr_ratio"), std::string::npos);
  s.min_lr_ratio = 0.1;
  s.peak_lr = NAN;
  EXPECT_NE(ValidateLrSchedule(s).message().find("schedule.peak_lr"), std::string::npos);
}

}  // namespace
}  // namespace prolong::train
