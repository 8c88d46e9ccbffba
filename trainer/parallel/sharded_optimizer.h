// Optimizer-state sharding (ZeRO stage 1) for AdamW over the world group.
//
// Every rank holds the full reduced gradients after the world all-reduce, so any rank can step
// any parameter; each parameter is stepped by one owner, which alone keeps its AdamW moments,
// and every rank then receives the updated parameter from its owner. The shards are over the
// world group, not only the dp group: context-parallel ranks of one replica hold the same
// parameters and the same reduced gradients just as data-parallel replicas do, so splitting over
// all ranks is as correct, needs only the world communicator, and divides the moments by
// dp x cp instead of dp.
//
// Whole parameters are assigned, not slices of a flat parameter space: AdamW's state stays
// per parameter (torch::optim::AdamW steps a shard unchanged, and checkpoints keep their
// format), at the cost of a balance no better than the largest parameter (an embedding).
//
// The optimizer keeps all parameters in its groups; a rank steps only its own by hiding the
// others' gradients from AdamW for the step, which then creates no state for them.
//
// Thread-safety: used from one thread; every rank calls the collective methods in the same order.
#ifndef PROLONG_TRAINER_PARALLEL_SHARDED_OPTIMIZER_H_
#define PROLONG_TRAINER_PARALLEL_SHARDED_OPTIMIZER_H_

#include <cstdint>
#include <vector>

#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "trainer/comm/communicator.h"

namespace prolong::parallel {

// The rank that steps each parameter: largest first, each to the rank with the fewest elements
// so far (the lowest such rank on ties). The same on every rank.
std::vector<int> AssignParameterOwners(const std::vector<torch::Tensor>& parameters, int ranks);

class OptimizerSharding {
 public:
  // `parameters` (one dtype and device) are the optimizer's, in a fixed order; `comm` (the world
  // group) must outlive this object. Transfers go in rounds of about `bucket_bytes` per rank.
  OptimizerSharding(std::vector<torch::Tensor> parameters, comm::Communicator* comm,
                    int64_t bucket_bytes);

  bool owns(size_t parameter) const { return owners_[parameter] == comm_->rank(); }
  const std::vector<int>& owners() const { return owners_; }

  // optimizer.step() on this rank's parameters only; the others' gradients are kept.
  void Step(torch::optim::AdamW& optimizer);
  // Collective: every rank copies each parameter from its owner.
  void BroadcastParameters();
  // Collective: world rank 0's optimizer gets every parameter's state from its owner (exp_avg,
  // exp_avg_sq and step; amsgrad is not supported), as an unsharded optimizer would hold it.
  void GatherState(torch::optim::AdamW& optimizer);
  // Drops the state of parameters other ranks own: after GatherState, or after loading a full
  // state.
  void DropOthersState(torch::optim::AdamW& optimizer) const;

 private:
  std::vector<torch::Tensor> parameters_;
  comm::Communicator* comm_;
  int64_t bucket_bytes_;
  std::vector<int> owners_;
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_SHARDED_OPTIMIZER_H_
