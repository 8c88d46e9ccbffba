// Document-masked causal attention on a GPU through LibTorch's fused kernels: one
// scaled_dot_product_attention call (flash or cuDNN) per document, each causal on its own. For
// a rank that holds whole sequences (no context parallelism): documents are the runs of equal
// layout.document in token order. Built only with a CUDA LibTorch (PROLONG_CUDA), as the fused
// kernels need LibTorch 2.
#ifndef PROLONG_TRAINER_ATTENTION_FUSED_ATTENTION_H_
#define PROLONG_TRAINER_ATTENTION_FUSED_ATTENTION_H_

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"

namespace prolong::attention {

#ifdef PROLONG_CUDA
// q [T, Hq, D], k and v [T, Hkv, D] -> [T, Hq, D]; differentiable. K and V are expanded to Hq
// heads so that the flash kernel (not the T x T math fallback) takes every document.
torch::Tensor FusedDocumentAttention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const TokenLayout& layout,
                                     double scale);
#endif

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_FUSED_ATTENTION_H_
