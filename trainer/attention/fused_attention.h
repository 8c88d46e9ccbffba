// Document-masked causal attention on a GPU through LibTorch's fused kernels: for a rank that
// holds whole sequences (FusedDocumentAttention: documents are the runs of equal
// layout.document in token order, each causal on its own), and flash attention's varlen kernel
// as context parallelism's local attention (FlashPartialAttention). Built only with a CUDA
// LibTorch (PROLONG_CUDA), as the fused kernels need LibTorch 2.
//
// Five ways to call the kernels, all differentiable, q [T, Hq, D] and k, v [T, Hkv, D] in and
// [T, Hq, D] out:
//  - kPerDocument: one scaled_dot_product_attention call per document, K and V expanded to Hq
//    heads first, so that every backend (flash, cuDNN, memory-efficient) can take it; SDPA
//    picks flash attention 2 first;
//  - kPerDocumentGqa: the same calls with enable_gqa, K and V not expanded (LibTorch >= 2.5);
//  - kVarlenFlash: one flash-attention call over the whole packed sequence with cumulative
//    document lengths (flash attention's varlen interface, as ProLong's training code uses it):
//    no per-document copies, grouped-query attention native in the kernel
//    (FlashPartialAttention below, with the keys the queries' own);
//  - kPerDocumentCudnn: one cuDNN attention call per document, K and V expanded; on Hopper
//    cuDNN's kernels train 1.7-2.3x faster than flash attention 2 (transformers #48163). cuDNN
//    builds a graph for every new shape, so each document is padded at its end to one of a
//    few dozen lengths (padded_length.h);
//  - kHybrid: documents of 8,192 tokens or more as kPerDocumentGqa, the runs of shorter ones
//    between them as kVarlenFlash: each where it was measured fastest (hybrid_runs.h).
// kVarlenFlash, kPerDocumentCudnn and kHybrid need bf16 or fp16; float32 inputs take
// kPerDocument.
#ifndef PROLONG_TRAINER_ATTENTION_FUSED_ATTENTION_H_
#define PROLONG_TRAINER_ATTENTION_FUSED_ATTENTION_H_

#include <functional>
#include <memory>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/fused_kernel.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/attention/varlen_attention.h"

namespace prolong::attention {

#ifdef PROLONG_CUDA
torch::Tensor FusedDocumentAttention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const TokenLayout& layout,
                                     double scale, FusedKernel kernel = kDefaultFusedKernel);

// Flash attention's varlen kernel (bf16 or fp16 on a GPU) as a VarlenKernel
// (varlen_attention.h): forward and backward per call, the log-sum-exp as [heads, queries]
// whichever layout this PyTorch's kernel uses.
std::shared_ptr<const VarlenKernel> FlashVarlenKernel();

// VarlenPartialAttention over FlashVarlenKernel, one per process: context parallelism's local
// attention on a GPU (the gathered keys, or a ring block), and kVarlenFlash's. Inputs the kernel
// does not take (float32, the CPU) go to the blockwise implementation.
const PartialAttention& FlashPartialAttention();

// FusedDocumentAttention with `kernel`, as the model's attention core (model::AttentionCore).
std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                            const TokenLayout&, double)>
FusedAttentionCore(FusedKernel kernel = kDefaultFusedKernel);
#endif

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_FUSED_ATTENTION_H_
