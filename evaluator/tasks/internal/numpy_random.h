// numpy's `default_rng(seed).permutation(n)` (SeedSequence -> PCG64 -> Generator.shuffle), draw
// for draw. Hugging Face `datasets` shuffles with it (`Dataset.shuffle(seed=...)`,
// `train_test_split(seed=...)`), and HELMET uses those to choose demos and test samples.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_NUMPY_RANDOM_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_NUMPY_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace prolong::evaluator::tasks::internal {

// PCG64 (XSL-RR 128/64) seeded as numpy seeds it from SeedSequence(seed).
class Pcg64 {
 public:
  explicit Pcg64(uint64_t seed);

  uint64_t NextUint64();
  // numpy's next_uint32: the low half of a 64-bit draw, then its high half.
  uint32_t NextUint32();
  // numpy's random_interval: uniform in [0, max] by masked rejection.
  uint64_t RandomInterval(uint64_t max);

 private:
  unsigned __int128 state_ = 0, increment_ = 0;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

// np.random.default_rng(seed).permutation(n).
std::vector<size_t> NumpyPermutation(uint64_t seed, size_t n);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_NUMPY_RANDOM_H_
