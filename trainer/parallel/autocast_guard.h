// Mixed precision the way PyTorch's autocast does it (and ProLong's bf16 training): parameters,
// gradients and AdamW state stay float32, while inside the guard matrix products and attention
// run in bfloat16 on the parameters' device, with numerically sensitive ops (softmax, norms,
// losses) kept in float32 by autocast's own op lists. Backward replays the dtypes the forward
// used, so it runs outside the guard; a layer recomputed for activation checkpointing takes
// the state its forward saw (CurrentAutocast) into a guard of its own.
//
// Thread-safety: autocast state is per thread; a guard is used on the thread that trains.
#ifndef PROLONG_TRAINER_PARALLEL_AUTOCAST_GUARD_H_
#define PROLONG_TRAINER_PARALLEL_AUTOCAST_GUARD_H_

#include "c10/core/DeviceType.h"
#include "c10/core/ScalarType.h"

namespace prolong::parallel {

struct AutocastState {
  bool enabled = false;
  c10::ScalarType dtype = c10::kBFloat16;
};

// This thread's autocast state for `device`.
AutocastState CurrentAutocast(c10::DeviceType device);

class AutocastGuard {
 public:
  // Does nothing unless `enabled`. Casts to `dtype` on `device` (CPU or CUDA).
  AutocastGuard(c10::DeviceType device, bool enabled, c10::ScalarType dtype = c10::kBFloat16);
  // Restores the earlier state and drops the cached casts of the weights.
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  bool was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::kFloat;
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_AUTOCAST_GUARD_H_
