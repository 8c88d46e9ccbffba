// The data-parallel part of a training step (applied last by Parallelize): every rank's
// gradients summed over the world group in flat buckets (gradient_reduction.h), during the
// step's last backward pass or after it, and AdamW stepped on all parameters or, with ZeRO-1,
// each rank on its own share (sharded_optimizer.h). Context-parallel ranks of one replica hold
// partial gradients of the same parameters just as data-parallel replicas do, so the sums run
// over the whole world group. With one process every method is what one process needs:
// nothing, or optimizer.step().
//
// Thread-safety: used from the thread that trains; every rank calls the collectives (marked)
// in the same order.
#ifndef PROLONG_TRAINER_PARALLEL_DATA_PARALLEL_H_
#define PROLONG_TRAINER_PARALLEL_DATA_PARALLEL_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/parallel_plan.h"

namespace prolong::parallel {

class OverlappedGradientReduction;
class OptimizerSharding;

class DataParallel {
 public:
  // `parameters` are the model's trainable ones, by name in named_parameters() order; `world`
  // (null for one process) must outlive this object. INVALID_ARGUMENT for ZeRO-1 over
  // parameters of several dtypes or devices.
  static absl::StatusOr<std::unique_ptr<DataParallel>> Create(
      std::vector<std::pair<std::string, torch::Tensor>> parameters, comm::Communicator* world,
      const ParallelPlan& plan);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Before the backward pass that makes the gradients final (the step's last micro-batch).
  void BeforeLastBackward();
  // Collective, after backward: every rank holds the gradients summed over the world group.
  void ReduceGradients();
  // After a failed backward: forgets the sums started, without waiting for them.
  void Abandon();

  // Collective: AdamW on this rank's parameters (all of them, or its share with ZeRO-1); then
  // every rank holds every updated parameter.
  void Step(torch::optim::AdamW& optimizer);
  // Collective, with ZeRO-1: world rank 0's optimizer then holds every parameter's state, as it
  // would without sharding (for a checkpoint). Otherwise nothing.
  void GatherOptimizerState(torch::optim::AdamW& optimizer);
  // With ZeRO-1, drops the state of parameters other ranks step: after GatherOptimizerState, and
  // after loading a checkpoint's full state. Otherwise nothing.
  void ShardOptimizerState(torch::optim::AdamW& optimizer);
  // All-reduces of gradients a step makes over the world group (0 for one process).
  size_t gradient_buckets() const { return world_ == nullptr ? 0 : buckets_; }
  // False for a parameter (by name) whose optimizer state another rank keeps with ZeRO-1.
  bool KeepsOptimizerStateOf(const std::string& parameter) const {
    return others_parameters_.count(parameter) == 0;
  }

 private:
  DataParallel(std::vector<torch::Tensor> parameters, comm::Communicator* world,
               const ParallelPlan& plan);

  std::vector<torch::Tensor> parameters_;
  comm::Communicator* world_;
  int64_t bucket_bytes_;
  size_t buckets_;
  std::unique_ptr<OverlappedGradientReduction> overlapped_;  // with a world and the option
  std::unique_ptr<OptimizerSharding> sharding_;              // with a world above 1 and ZeRO-1
  std::set<std::string> others_parameters_;
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_DATA_PARALLEL_H_
