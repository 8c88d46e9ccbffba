// Document-masked attention computed block by block with an online softmax, so memory grows
// linearly with sequence length. Masking is described per token rather than by a sequence
// layout, which lets the same code serve a context-parallel rank whose queries are two
// non-contiguous chunks of the sequence and whose keys may be any subset of it.
//
// Query i may attend key j iff
//   q_layout.document[i] == k_layout.document[j] && k_layout.position[j] <= q_layout.position[i].
//
// Shapes: q [Tq, Hq, D], k and v [Tk, Hkv, D], Hq a multiple of Hkv (grouped-query attention:
// query head h reads kv head h / (Hq / Hkv)). Softmax statistics and accumulators are float32
// whatever the input dtype. Invalid arguments throw c10::Error naming the argument.
//
// Thread-safe: the functions keep no state.
#ifndef PROLONG_TRAINER_ATTENTION_BLOCKWISE_ATTENTION_H_
#define PROLONG_TRAINER_ATTENTION_BLOCKWISE_ATTENTION_H_

#include <cstdint>
#include <optional>

#include "torch/types.h"

namespace prolong::attention {

// Per-token mask inputs, each int64 [T]. `position` is the token's index in the full packed
// sequence. Within each contiguous run of tokens both are expected non-decreasing (that is what
// makes block skipping effective), but correctness never depends on it.
struct TokenLayout {
  torch::Tensor document;
  torch::Tensor position;
};

struct AttentionResult {
  torch::Tensor out;  // [Tq, Hq, D]
  // [Hq, Tq] float32: log-sum-exp of the scaled scores over the allowed keys; -inf for a row
  // with no allowed key (whose `out` row is 0).
  torch::Tensor lse;
};

struct AttentionGrads {
  torch::Tensor dq;  // like q
  torch::Tensor dk;  // like k
  torch::Tensor dv;  // like v
};

// Large enough for BLAS to run near peak, small enough that block skipping pays off for
// packed sequences of short documents.
inline constexpr int64_t kDefaultBlockSize = 256;

// `scale` defaults to 1 / sqrt(D). `out` has q's dtype.
AttentionResult BlockwiseAttentionForward(const torch::Tensor& q, const torch::Tensor& k,
                                          const torch::Tensor& v, const TokenLayout& q_layout,
                                          const TokenLayout& k_layout,
                                          std::optional<double> scale = std::nullopt,
                                          int64_t block_size = kDefaultBlockSize);

// FlashAttention-2 backward: recomputes each block's probabilities from q, k and the forward's
// `lse` instead of storing them. `out` and `lse` must come from the forward with the same
// arguments (any block size). Gradients have the dtypes of q, k and v.
AttentionGrads BlockwiseAttentionBackward(const torch::Tensor& dout, const torch::Tensor& q,
                                          const torch::Tensor& k, const torch::Tensor& v,
                                          const torch::Tensor& out, const torch::Tensor& lse,
                                          const TokenLayout& q_layout, const TokenLayout& k_layout,
                                          std::optional<double> scale = std::nullopt,
                                          int64_t block_size = kDefaultBlockSize);

// Combines results of the same queries against two disjoint key sets into the result against
// their union (log-sum-exp merge). Rows where either or both sides have no allowed key are
// handled without NaN. The returned `out` is float32 so that a chain of merges (one per
// context-parallel step) rounds only once, when the caller casts it at the end.
AttentionResult MergePartialAttention(const AttentionResult& a, const AttentionResult& b);

// BlockwiseAttentionForward's `out` as an autograd operation: gradients flow to q, k and v
// through BlockwiseAttentionBackward. The layouts carry no gradient.
torch::Tensor DocumentMaskedAttention(const torch::Tensor& q, const torch::Tensor& k,
                                      const torch::Tensor& v, const TokenLayout& q_layout,
                                      const TokenLayout& k_layout,
                                      std::optional<double> scale = std::nullopt,
                                      int64_t block_size = kDefaultBlockSize);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_BLOCKWISE_ATTENTION_H_
