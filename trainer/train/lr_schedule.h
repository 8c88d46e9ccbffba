// Learning-rate schedules of a training stage: linear warmup from 0, then cosine, linear or
// constant down to a floor. ProLong: 10% warmup and cosine to 0.1x in stage 1, the same shape
// restarted for stage 2 (optimizer state kept), 5% warmup for SFT.
//
// Steps are counted from 0 within a stage. Over `steps` optimizer steps with
// W = ceil(warmup_fraction * steps) warmup steps:
//   step s < W:          peak * s / W  (step 0 runs at 0, as Hugging Face's schedulers do)
//   W <= s < steps:      peak at s = W, reaching min_lr_ratio * peak exactly at the last step
//                        s = steps - 1 (cosine: half a cosine period; linear: a straight line;
//                        constant: peak throughout); when s = W is the last step, peak
//                        (a one-step stage runs at peak_lr)
//   s >= steps:          the last step's rate.
// No LibTorch here: the scheduler and the CLI can describe a schedule without it.
#ifndef PROLONG_TRAINER_TRAIN_LR_SCHEDULE_H_
#define PROLONG_TRAINER_TRAIN_LR_SCHEDULE_H_

#include <cstdint>

#include "absl/status/status.h"

namespace prolong::train {

enum class ScheduleShape { kCosine, kLinear, kConstant };

struct LrSchedule {
  double peak_lr = 1e-5;
  // Share of the steps spent warming up, in [0, 1).
  double warmup_fraction = 0.1;
  ScheduleShape shape = ScheduleShape::kCosine;
  // The last step's rate as a fraction of peak_lr, in [0, 1].
  double min_lr_ratio = 0.1;
  // Optimizer steps in the stage, >= 1.
  int64_t steps = 1;
};

// INVALID_ARGUMENT naming the field.
absl::Status ValidateLrSchedule(const LrSchedule& schedule);

int64_t WarmupSteps(const LrSchedule& schedule);

// The rate of step `step` (>= 0) of a valid schedule.
double LearningRate(const LrSchedule& schedule, int64_t step);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_LR_SCHEDULE_H_
