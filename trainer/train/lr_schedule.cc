#include "trainer/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace prolong::train {

absl::Status ValidateLrSchedule(const LrSchedule& schedule) {
  if (!std::isfinite(schedule.peak_lr) || schedule.peak_lr < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.peak_lr must be finite and >= 0, got ", schedule.peak_lr));
  }
  if (!(schedule.warmup_fraction >= 0 && schedule.warmup_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.warmup_fraction must be in [0, 1), got ", schedule.warmup_fraction));
  }
  if (!(schedule.min_lr_ratio >= 0 && schedule.min_lr_ratio <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.min_lr_ratio must be in [0, 1], got ", schedule.min_lr_ratio));
  }
  if (schedule.steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.steps must be >= 1, got ", schedule.steps));
  }
  switch (schedule.shape) {
    case ScheduleShape::kCosine:
    case ScheduleShape::kLinear:
    case ScheduleShape::kConstant:
      return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("schedule.shape has no meaning: ", static_cast<int>(schedule.shape)));
}

int64_t WarmupSteps(const LrSchedule& schedule) {
  // ceil, as Hugging Face's TrainingArguments.get_warmup_steps; the tolerance keeps 0.1 * 30
  // (3.0000000000000004 in binary) at 3. At most steps - 1 since warmup_fraction < 1.
  const double exact = schedule.warmup_fraction * static_cast<double>(schedule.steps);
  const int64_t warmup = static_cast<int64_t>(std::ceil(exact - 1e-9));
  return std::clamp<int64_t>(warmup, 0, schedule.steps - 1);
}

double LearningRate(const LrSchedule& schedule, int64_t step) {
  const double peak = schedule.peak_lr;
  const int64_t warmup = WarmupSteps(schedule);
  step = std::clamp<int64_t>(step, 0, schedule.steps - 1);
  if (step < warmup) return peak * static_cast<double>(step) / static_cast<double>(warmup);
  const double floor = peak * schedule.min_lr_ratio;
  const int64_t decay_steps = schedule.steps - 1 - warmup;
  // With no step between the peak and the last one, the peak wins.
  const double progress =
      decay_steps == 0 ? 0.0
                       : static_cast<double>(step - warmup) / static_cast<double>(decay_steps);
  switch (schedule.shape) {
    case ScheduleShape::kCosine:
      return floor + (peak - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
    case ScheduleShape::kLinear:
      return peak - (peak - floor) * progress;
    case ScheduleShape::kConstant:
      return peak;
  }
  return peak;
}

}  // namespace prolong::train
