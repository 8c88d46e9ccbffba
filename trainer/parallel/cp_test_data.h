// Seeded packed sequences for context-parallel tests: documents of random lengths (some of one
// token, some shorter than a chunk, some spanning chunks and ranks), random q, k, v and loss
// weights, and the datamixer's zigzag chunks.
#ifndef PROLONG_TRAINER_PARALLEL_CP_TEST_DATA_H_
#define PROLONG_TRAINER_PARALLEL_CP_TEST_DATA_H_

#include <cstdint>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"

namespace prolong::parallel::testing {

struct PackedSequence {
  torch::Tensor q, k, v;  // [T, H, D], float32
  torch::Tensor weights;  // [T, Hq, D]: the loss is (out * weights).sum()
  attention::TokenLayout layout;
};

constexpr int64_t kTokens = 157;  // Divisible by no chunk count.
constexpr int64_t kQueryHeads = 4;
constexpr int64_t kKeyValueHeads = 2;
constexpr int64_t kHeadDim = 8;

PackedSequence MakePackedSequence(uint64_t seed);

// The positions cp rank `cp_rank` of `cp_size` holds: chunks c and 2C-1-c of 2C, chunk j being
// [j*T / 2C, (j+1)*T / 2C), as datamixer/plan/rank_layout.h cuts them.
torch::Tensor ZigzagIndices(int64_t tokens, int cp_rank, int cp_size);

}  // namespace prolong::parallel::testing

#endif  // PROLONG_TRAINER_PARALLEL_CP_TEST_DATA_H_
