// Ulysses context parallelism (DeepSpeed-Ulysses; ProLong's own training uses it): an
// all-to-all turns each rank's sequence-split q, k and v (its tokens, every head) into
// head-split ones over the whole sequence (every token, heads / C of them), attention runs
// locally on whole documents, and an all-to-all turns the result back. Per-link volume stays
// constant as C grows with the sequence; the heads must split among the ranks (cp_scheme.h's
// CheckCpHeads): when C is a multiple of the kv heads, each kv head is replicated to the ranks
// whose query heads read it. Backward is the same exchanges in reverse (an all-to-all is its own
// inverse).
#ifndef PROLONG_TRAINER_PARALLEL_ULYSSES_ATTENTION_H_
#define PROLONG_TRAINER_PARALLEL_ULYSSES_ATTENTION_H_

#include "torch/types.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/gathered_layouts.h"

namespace prolong::parallel {

// q [T, Hq, D], k and v [T, Hkv, D] for this rank's T tokens; `layouts` gathered over `cp`.
// Differentiable in q, k and v. `local` attends the whole sequence's tokens for this rank's
// heads.
torch::Tensor UlyssesAttention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const GatheredLayouts& layouts,
                               comm::Communicator* cp, double scale,
                               const attention::PartialAttention& local);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_ULYSSES_ATTENTION_H_
