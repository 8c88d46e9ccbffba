// The bytes LibTorch holds in CPU tensors, now and at most since a reset: a CPU allocator that
// counts what passes through it (c10::SetCPUAllocator), to measure a step's peak against
// memory_plan.h. Tensors allocated before Install are not counted, nor freed from the count.
//
// Thread-safe.
#ifndef PROLONG_TRAINER_TRAIN_CPU_MEMORY_METER_H_
#define PROLONG_TRAINER_TRAIN_CPU_MEMORY_METER_H_

#include <cstdint>

namespace prolong::train {

class CpuMemoryMeter {
 public:
  // Routes LibTorch's CPU allocations through the meter from now on, for the whole process.
  static void Install();
  static int64_t current_bytes();
  static int64_t peak_bytes();
  // The peak restarts from the bytes held now.
  static void ResetPeak();
};

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_CPU_MEMORY_METER_H_
