#include "evaluator/tasks/internal/numpy_random.h"

#include <array>

namespace prolong::evaluator::tasks::internal {
namespace {

// numpy/random/bit_generator.pyx: SeedSequence's hash constants (after O'Neill's seed_seq_fe).
constexpr uint32_t kInitA = 0x43b0d7e5U, kMultA = 0x931e8875U;
constexpr uint32_t kInitB = 0x8b51f9ddU, kMultB = 0x58f38dedU;
constexpr uint32_t kMixMultL = 0xca01f9ddU, kMixMultR = 0x4973f715U;
constexpr int kXShift = 16;
constexpr int kPoolSize = 4;

uint32_t HashMix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t Mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// SeedSequence(seed).generate_state(4, np.uint64).
std::array<uint64_t, 4> SeedSequenceState(uint64_t seed) {
  std::vector<uint32_t> entropy;
  do {
    entropy.push_back(static_cast<uint32_t>(seed));
    seed >>= 32;
  } while (seed != 0);

  std::array<uint32_t, kPoolSize> pool;
  uint32_t hash_const = kInitA;
  for (int i = 0; i < kPoolSize; ++i) {
    pool[i] = HashMix(i < static_cast<int>(entropy.size()) ? entropy[i] : 0U, hash_const);
  }
  for (int src = 0; src < kPoolSize; ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      if (src != dst) pool[dst] = Mix(pool[dst], HashMix(pool[src], hash_const));
    }
  }
  for (size_t src = kPoolSize; src < entropy.size(); ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      pool[dst] = Mix(pool[dst], HashMix(entropy[src], hash_const));
    }
  }

  uint32_t words[8];
  uint32_t out_const = kInitB;
  for (int i = 0; i < 8; ++i) {
    uint32_t value = pool[i % kPoolSize];
    value ^= out_const;
    out_const *= kMultB;
    value *= out_const;
    value ^= value >> kXShift;
    words[i] = value;
  }
  std::array<uint64_t, 4> state;
  for (int i = 0; i < 4; ++i) {
    state[i] =
        static_cast<uint64_t>(words[2 * i]) | (static_cast<uint64_t>(words[2 * i + 1]) << 32);
  }
  return state;
}

constexpr unsigned __int128 kPcgMultiplier =
    (static_cast<unsigned __int128>(2549297995355413924ULL) << 64) + 4865540595714422341ULL;

}  // namespace

Pcg64::Pcg64(uint64_t seed) {
  const std::array<uint64_t, 4> words = SeedSequenceState(seed);
  const unsigned __int128 initstate = (static_cast<unsigned __int128>(words[0]) << 64) | words[1];
  const unsigned __int128 initseq = (static_cast<unsigned __int128>(words[2]) << 64) | words[3];
  // pcg_setseq_128_srandom_r.
  state_ = 0;
  increment_ = (initseq << 1) | 1;
  state_ = state_ * kPcgMultiplier + increment_;
  state_ += initstate;
  state_ = state_ * kPcgMultiplier + increment_;
}

uint64_t Pcg64::NextUint64() {
  state_ = state_ * kPcgMultiplier + increment_;
  const uint64_t xored = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
  const unsigned rotation = static_cast<unsigned>(state_ >> 122);
  return (xored >> rotation) | (xored << ((64 - rotation) & 63));
}

uint32_t Pcg64::NextUint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return uinteger_;
  }
  const uint64_t next = NextUint64();
  has_uint32_ = true;
  uinteger_ = static_cast<uint32_t>(next >> 32);
  return static_cast<uint32_t>(next);
}

uint64_t Pcg64::RandomInterval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int shift = 1; shift <= 32; shift <<= 1) mask |= mask >> shift;
  uint64_t value;
  if (max <= 0xffffffffULL) {
    while ((value = (NextUint32() & mask)) > max) {
    }
  } else {
    while ((value = (NextUint64() & mask)) > max) {
    }
  }
  return value;
}

std::vector<size_t> NumpyPermutation(uint64_t seed, size_t n) {
  std::vector<size_t> permutation(n);
  for (size_t i = 0; i < n; ++i) permutation[i] = i;
  Pcg64 generator(seed);
  for (size_t i = n; i-- > 1;) {
    std::swap(permutation[i], permutation[static_cast<size_t>(generator.RandomInterval(i))]);
  }
  return permutation;
}

}  // namespace prolong::evaluator::tasks::internal
