// The data-parallel part of a training step (applied last by Parallelize): every rank's
// gradients summed over the world group in flat buckets (gradient_reduction.h), during the
// step's last backward pass or after it, and AdamW stepped on all parameters or, with ZeRO-1,
// each rank on its own share (sharded_optimizer.h). Context-parallel ranks of one replica hold
// partial gradients of the same parameters just as data-parallel replicas do, so the sums run
// over the whole world group. With sharded weights (fully_sharded.h) each rank holds shards
// instead: the layers' gradients are reduced as their backward runs, the root unit's after each
// micro-batch, and AdamW steps the shards. With one process every method is what one process
// needs: nothing, or optimizer.step().
//
// Thread-safety: used from the thread that trains; every rank calls the collectives (marked) in
// the same order.
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

class FullySharded;
class OverlappedGradientReduction;
class OptimizerSharding;

class DataParallel {
 public:
  // `parameters` are the model's trainable ones, by name in named_parameters() order; `world`
  // (null for one process) must outlive this object. `sharded`, when the model's weights were
  // sharded, takes the place of the world's gradient sums and of ZeRO-1. INVALID_ARGUMENT for
  // ZeRO-1 over parameters of several dtypes or devices.
  static absl::StatusOr<std::unique_ptr<DataParallel>> Create(
      std::vector<std::pair<std::string, torch::Tensor>> parameters, comm::Communicator* world,
      const ParallelPlan& plan, std::shared_ptr<FullySharded> sharded = nullptr);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Collective with sharded weights, around each micro-batch: before its forward, and after its
  // backward.
  void BeforeForward();
  void AfterBackward();
  // Before the backward pass that makes the gradients final (the step's last micro-batch).
  void BeforeLastBackward();
  // Collective, after backward: every rank holds the gradients summed over the world group.
  void ReduceGradients();
  // After a failed backward: forgets the sums started, without waiting for them.
  void Abandon();

  // Collective: AdamW on this rank's parameters (all of them, its share with ZeRO-1, its shards
  // with sharded weights); then every rank holds its updated parameters.
  void Step(torch::optim::AdamW& optimizer);
  // Collective with sharding: the model's parameters and the optimizer's state as one process
  // holds them, on world rank 0, for a checkpoint to save. Otherwise nothing.
  void GatherState(torch::optim::AdamW& optimizer);
  // With sharding, each rank keeps only its share again, after GatherState.
  void ShardState(torch::optim::AdamW& optimizer);
  // All-reduces of gradients a step makes over the world group (0 for one process, or with
  // sharded weights).
  size_t gradient_buckets() const { return world_ == nullptr || sharded_ ? 0 : buckets_; }
  // False for a parameter (by name) whose optimizer state another rank keeps with ZeRO-1.
  bool KeepsOptimizerStateOf(const std::string& parameter) const {
    return others_parameters_.count(parameter) == 0;
  }
  // The ranks whose gradients together make the whole gradients: the shard group with sharded
  // weights; null when every rank holds them whole.
  comm::Communicator* gradient_norm_group() const;
  // The sharded weights, or null.
  const FullySharded* sharded() const { return sharded_.get(); }

 private:
  DataParallel(std::vector<torch::Tensor> parameters, comm::Communicator* world,
               const ParallelPlan& plan, std::shared_ptr<FullySharded> sharded);

  std::vector<torch::Tensor> parameters_;
  comm::Communicator* world_;
  int64_t bucket_bytes_;
  size_t buckets_;
  std::unique_ptr<OverlappedGradientReduction> overlapped_;  // with a world and the option
  std::unique_ptr<OptimizerSharding> sharding_;              // with a world above 1 and ZeRO-1
  std::shared_ptr<FullySharded> sharded_;                    // with sharded weights
  std::set<std::string> others_parameters_;
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_DATA_PARALLEL_H_
