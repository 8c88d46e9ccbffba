// Document-masked attention over a sequence split among the C ranks of a context-parallel
// group (each holding any subset of its tokens: the datamixer's zigzag chunks c and 2C-1-c).
//
// All-gather scheme (Llama 3's; torchtitan's): forward gathers every rank's K and V with their
// document ids and positions and attends the local queries to them; backward computes dK and dV
// for every gathered key and reduce-scatters them back to the ranks that own those keys. Any
// document lengths work, as masking is per token; under grouped-query attention K and V are a
// fraction of Q's size, so gathering them is cheap. Partial results never need merging here:
// each rank's queries see every key in one blockwise pass, in float32.
#ifndef PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_
#define PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/comm/communicator.h"

namespace prolong::parallel {

// q [T, Hq, D], k and v [T, Hkv, D] for this rank's T tokens, `layout` their document ids and
// positions in the whole sequence (documents numbered alike on every rank). Differentiable in
// q, k and v. Every rank of `cp` calls it at the same point; T may differ between ranks.
// With cp->size() == 1 it is DocumentMaskedAttention.
torch::Tensor ContextParallelAttention(const torch::Tensor& q, const torch::Tensor& k,
                                       const torch::Tensor& v, const attention::TokenLayout& layout,
                                       comm::Communicator* cp, double scale);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_
