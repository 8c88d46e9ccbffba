// Document-masked attention (blockwise_attention.h's mask) of queries to a set of keys that may
// hold only part of what the queries see, such as one context-parallel rank's block, in two
// halves a caller runs apart. The forward returns the output with its log-sum-exp, so that
// results over disjoint key sets merge (MergePartialAttention). The backward takes the output
// and log-sum-exp of all the parts merged, as FlashAttention-2's backward does, so that each
// part's gradients are computed on their own (the ring scheme of context parallelism).
//
// Thread-safety: implementations are safe to call from several threads (the autograd engine
// runs a GPU's backward on its own thread).
#ifndef PROLONG_TRAINER_ATTENTION_PARTIAL_ATTENTION_H_
#define PROLONG_TRAINER_ATTENTION_PARTIAL_ATTENTION_H_

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"

namespace prolong::attention {

class PartialAttention {
 public:
  virtual ~PartialAttention() = default;

  // out [Tq, Hq, D] (float32 or q's dtype), lse [Hq, Tq] float32; rows that see no key get out
  // 0 and lse -inf.
  virtual AttentionResult Forward(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v, const TokenLayout& q_layout,
                                  const TokenLayout& k_layout, double scale) const = 0;

  // Gradients of this part for the final `out` and `lse` of q's rows. dk and dv are zero for
  // keys no query sees. Dtypes are the implementation's: callers cast.
  virtual AttentionGrads Backward(const torch::Tensor& dout, const torch::Tensor& q,
                                  const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& out, const torch::Tensor& lse,
                                  const TokenLayout& q_layout, const TokenLayout& k_layout,
                                  double scale) const = 0;
};

// BlockwiseAttentionForward and -Backward on float32 operands (any device): a part's output
// stays unrounded until the parts are merged.
const PartialAttention& BlockwisePartialAttention();

// The attention of q to all of k and v through `attention`, differentiable in q, k and v, out in
// q's dtype and gradients in their inputs'. `attention` must outlive the backward pass.
torch::Tensor AttendKeys(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const TokenLayout& q_layout, const TokenLayout& k_layout, double scale,
                         const PartialAttention& attention);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_PARTIAL_ATTENTION_H_
