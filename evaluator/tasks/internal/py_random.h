// CPython's `random` module (Mersenne Twister MT19937, seeded as `random.seed(int)` seeds it),
// draw for draw. HELMET picks test samples (`random.sample`), balances ICL demos
// (`random.Random(seed).sample/shuffle`) and maps ICL labels to integers (`random.shuffle`) with
// it, and RULER draws its needles with it; reproducing the same stream lets our selections and
// mappings equal theirs for the same seed. Not thread-safe: one instance per thread.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_PY_RANDOM_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_PY_RANDOM_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace prolong::evaluator::tasks::internal {

class PyRandom {
 public:
  // random.seed(seed) for a non-negative integer below 2**64 (CPython's init_by_array over the
  // integer's 32-bit words, least significant first).
  explicit PyRandom(uint64_t seed);

  // genrand_uint32: one 32-bit output of the generator.
  uint32_t NextUint32();

  // random.getrandbits(k) for 0 <= k <= 64.
  uint64_t GetRandBits(int k);

  // random.getrandbits(128) as 16 big-endian bytes (the integer uuid.UUID(int=...) reads).
  std::array<uint8_t, 16> GetRandBits128();

  // random._randbelow(n): uniform in [0, n); 0 when n is 0, as CPython returns.
  uint64_t RandBelow(uint64_t n);

  // random.randint(a, b), a <= b.
  int64_t RandInt(int64_t a, int64_t b) {
    return a + static_cast<int64_t>(RandBelow(static_cast<uint64_t>(b - a) + 1));
  }

  // random.shuffle(x).
  template <typename T>
  void Shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      const size_t j = static_cast<size_t>(RandBelow(i + 1));
      std::swap(x[i], x[j]);
    }
  }

  // random.sample(range(n), k) (CPython 3.11's algorithm: a pool for small populations, a set of
  // selected indices otherwise), k <= n. The values are indices into the population.
  std::vector<size_t> Sample(size_t n, size_t k);

 private:
  void InitGenrand(uint32_t s);
  void InitByArray(const std::vector<uint32_t>& key);

  static constexpr int kN = 624;
  std::array<uint32_t, kN> mt_;
  int index_ = kN;
};

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_PY_RANDOM_H_
