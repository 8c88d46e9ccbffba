// Summing gradients over ranks in flat buckets, after backward or overlapped with it.
//
// Buckets are formed in reverse parameter order, the order backward produces gradients (the
// output end of the model first), as PyTorch's DDP does: consecutive parameters of one dtype and
// device, each bucket up to `bucket_bytes` (a larger gradient is a bucket of its own). Both ways
// of reducing use the same buckets, launched in the same order, so they give the same bits.
//
// Thread-safety: used from one thread, the one that runs backward (on the CPU the autograd
// engine runs the hooks on it; on a GPU they run while it waits for backward).
#ifndef PROLONG_TRAINER_PARALLEL_GRADIENT_REDUCTION_H_
#define PROLONG_TRAINER_PARALLEL_GRADIENT_REDUCTION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "torch/types.h"
#include "trainer/comm/communicator.h"

namespace torch::autograd {
struct Node;
}  // namespace torch::autograd

namespace prolong::parallel {

// Indices into `parameters` of each bucket, in launch order.
std::vector<std::vector<size_t>> PlanGradientBuckets(const std::vector<torch::Tensor>& parameters,
                                                     int64_t bucket_bytes);

// Sums every parameter's gradient over `comm`, bucket by bucket, after backward has finished. A
// parameter without a gradient takes part as zeros, so buckets line up on every rank, and gets
// the sum.
void AllReduceGradients(const std::vector<torch::Tensor>& parameters, comm::Communicator& comm,
                        int64_t bucket_bytes);

// The same reduction started during the last backward pass of a step: a hook on each
// parameter's gradient accumulator notes when its gradient is final, and a bucket whose
// parameters are all final is all-reduced asynchronously while backward goes on. Buckets are
// launched strictly in order (bucket i only after bucket i - 1), so every rank starts the same
// collectives in the same order whatever the timing; a parameter that gets no gradient in that
// pass (unused, or used only in earlier micro-batches) holds its bucket and the ones after it
// back until Finish.
//
// Gloo's CPU all-reduce runs on the process group's own threads and competes with backward for
// the cores; on GPUs (NCCL) it runs on its own stream. Each launched bucket is a copy of its
// gradients until Finish writes the sums back.
//
// Per step: Arm() before the backward pass that completes the gradients (the last
// micro-batch's), then Finish() after it (also when Arm was not called: a rank without
// micro-batches still takes part). After a failed backward, Abandon().
class OverlappedGradientReduction {
 public:
  // `parameters` are leaves that require grad; `comm` must outlive this object.
  OverlappedGradientReduction(std::vector<torch::Tensor> parameters, comm::Communicator* comm,
                              int64_t bucket_bytes);
  ~OverlappedGradientReduction();
  OverlappedGradientReduction(const OverlappedGradientReduction&) = delete;
  OverlappedGradientReduction& operator=(const OverlappedGradientReduction&) = delete;

  // Hooks the parameters' gradient accumulators for the next backward pass.
  void Arm();
  // Unhooks, launches the buckets not started yet (zeros for missing gradients), waits for all
  // and writes the sums into .grad, as AllReduceGradients does.
  void Finish();
  // Unhooks and forgets the launched buckets without waiting for them: after an error the
  // ranks no longer agree on what comes next anyway.
  void Abandon();

 private:
  class ReadyHook;

  // A parameter's gradient is final: launches every bucket that is now complete, in order.
  void MarkReady(size_t parameter);
  void Launch(size_t bucket);
  void Disarm();

  std::vector<torch::Tensor> parameters_;
  comm::Communicator* comm_;
  std::vector<std::vector<size_t>> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter

  // Per step.
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // held while armed
  std::vector<uintptr_t> hook_keys_;
  std::vector<bool> ready_;          // per parameter
  std::vector<size_t> missing_;      // per bucket: parameters not ready yet
  size_t next_bucket_ = 0;           // the next one to launch
  std::vector<torch::Tensor> flat_;  // per launched bucket
  std::vector<std::unique_ptr<comm::PendingWork>> pending_;
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_GRADIENT_REDUCTION_H_
