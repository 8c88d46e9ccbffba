// The ring scheme of context-parallel attention (see context_parallel_attention.h, which
// chooses it): every rank's K and V go round the cp group one neighbour at a time while each
// rank attends its queries to the block it holds.
//
// Thread-safety: as the communicator's (one thread; every member calls in the same order).
#ifndef PROLONG_TRAINER_PARALLEL_RING_ATTENTION_H_
#define PROLONG_TRAINER_PARALLEL_RING_ATTENTION_H_

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/gathered_layouts.h"

namespace prolong::parallel {

// ContextParallelAttention's contract, for cp->size() > 1, with the ranks' layouts gathered:
// each step attends to the held block through `local` (its forward, then its backward with the
// merged out and lse).
torch::Tensor RingAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            const attention::TokenLayout& layout, const GatheredLayouts& layouts,
                            comm::Communicator* cp, double scale,
                            const attention::PartialAttention& local);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_RING_ATTENTION_H_
