// Document-masked attention over a sequence split among the C ranks of a context-parallel
// group (each holding any subset of its tokens: the datamixer's zigzag chunks c and 2C-1-c).
// Any document lengths work under either scheme, as masking is per token.
//
// All-gather scheme (Llama 3's; torchtitan's): forward gathers every rank's K and V with their
// document ids and positions and attends the local queries to them in one pass; backward computes
// dK and dV for every gathered key and reduce-scatters them back to the ranks that own those keys.
// Few, large messages; under grouped-query attention K and V are a fraction of Q's size, so
// gathering them is cheap. Every rank holds all C ranks' K and V at once, and communication does
// not overlap compute.
//
// Ring scheme (ring-flash-attention's; Megatron-LM's context parallelism): C steps; at each,
// every rank passes the K and V block it holds to the next rank of the ring while it attends
// its queries to that block, then merges the step's partial result (out, log-sum-exp) into its
// running one in float32. Backward goes round the ring again with the final out and lse: each
// step adds to dq and to the held block's dK and dV, which follow the block one step behind
// and so reach their owner after C shifts. Transfers overlap compute and a rank holds two
// blocks (the one in use and the one arriving) instead of C, at the price of C - 1 smaller
// messages each way per pass. Blocks the local queries cannot see are skipped.
//
// Use all-gather by default (GQA, or when the K and V of the whole sequence fit easily); use the
// ring when gathering them costs too much memory or its transfer cannot hide behind compute.
//
// Under either scheme the local attention is a parameter (attention/partial_attention.h): the
// blockwise implementation (any device, float32 softmax), or on a GPU flash attention's varlen
// kernel (attention/fused_attention.h), which takes the gathered keys, or a ring block, in a
// few calls.
#ifndef PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_
#define PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/cp_scheme.h"

namespace prolong::parallel {

// q [T, Hq, D], k and v [T, Hkv, D] for this rank's T tokens, `layout` their document ids and
// positions in the whole sequence (documents numbered alike on every rank, never negative).
// Differentiable in q, k and v. Every rank of `cp` calls it at the same point with the same
// `scheme`; T may differ between ranks. With cp->size() == 1 it is DocumentMaskedAttention.
// `local` attends the local queries to the keys a rank holds; it must outlive the backward.
//
// Thread-safety: as the communicator's (one thread; every member calls in the same order).
torch::Tensor ContextParallelAttention(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const attention::TokenLayout& layout, comm::Communicator* cp, double scale,
    CpScheme scheme = CpScheme::kAllGather,
    const attention::PartialAttention& local = attention::BlockwisePartialAttention());

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_
