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
// Ulysses scheme (DeepSpeed-Ulysses; ProLong's own code): an all-to-all turns every rank's
// tokens with all heads into the whole sequence with heads / C of them, attention runs on whole
// documents, and an all-to-all turns the result back (ulysses_attention.h). Two exchanges of q,
// k, v and out each way per layer, each link carrying 1/C of them, and attention local to a
// rank over the whole sequence: the fused kernels' best case. The heads must split among the
// ranks (cp_scheme.h's CheckCpHeads).
//
// Use all-gather by default (GQA, or when the K and V of the whole sequence fit easily); use the
// ring when gathering them costs too much memory or its transfer cannot hide behind compute;
// use Ulysses when the heads split and the whole sequence's attention per head group is cheaper
// than moving K and V around (many ranks, long sequences).
//
// Under either scheme the local attention is a parameter (attention/partial_attention.h): the
// blockwise implementation (any device, float32 softmax), or on a GPU flash attention's varlen
// kernel (attention/fused_attention.h), which takes the gathered keys, or a ring block, in a
// few calls.
#ifndef PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_
#define PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/attention/tensor_snapshot.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/cp_scheme.h"
#include "trainer/parallel/gathered_layouts.h"

namespace prolong::parallel {

// Attention for one cp group, as a model's attention core (every layer calls it).
//
// Thread-safety: calls are serialized by the communicator's contract (every member calls in the
// same order); a layer's recomputation may come from the autograd engine's thread, so the kept
// layouts are guarded.
class ContextParallelAttention {
 public:
  // `cp` (null or of size 1: no context parallelism) and `local`, which attends the local
  // queries to the keys a rank holds, must outlive every backward pass through this object.
  ContextParallelAttention(
      comm::Communicator* cp, CpScheme scheme,
      const attention::PartialAttention& local = attention::BlockwisePartialAttention());

  // q [T, Hq, D], k and v [T, Hkv, D] for this rank's T tokens, `layout` their document ids
  // and positions in the whole sequence (documents numbered alike on every rank, never
  // negative). Differentiable in q, k and v. Every rank of the group calls it at the same
  // point; T may differ between ranks. Without a group it is DocumentMaskedAttention.
  //
  // The ranks' layouts are gathered when `layout` is not the tensors of the previous call (or
  // they changed in place since), and kept for the calls that follow with the same ones: a
  // model's layers share one layout per micro-batch, so the gather runs once per micro-batch
  // (on every rank alike, as every rank's layers see the same sequence of layouts), and so do
  // plans derived from it.
  torch::Tensor operator()(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const attention::TokenLayout& layout, double scale);

 private:
  std::shared_ptr<const GatheredLayouts> Layouts(const attention::TokenLayout& layout);

  comm::Communicator* cp_;
  CpScheme scheme_;
  const attention::PartialAttention& local_;
  absl::Mutex mutex_;
  // The layout gathered last.
  attention::TensorSnapshot document_ ABSL_GUARDED_BY(mutex_);
  attention::TensorSnapshot position_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<const GatheredLayouts> gathered_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_CONTEXT_PARALLEL_ATTENTION_H_
