// Fully sharded data parallelism (ZeRO stage 3, as PyTorch's FSDP and DeepSpeed do it): each of
// the N ranks of a shard group keeps 1 / N of every parameter, of its gradient and of its AdamW
// moments, and a parameter is whole only while it is used.
//
// Units. Parameters are gathered and reduced by unit, one all-gather (per gather dtype) and one
// reduce-scatter each: every decoder layer is a unit, and the embedding, final norm and lm_head
// are the root unit.
//   - A decoder layer runs checkpointed (activation_checkpointing.h) with its unit as its
//     LayerWeights: gathered for its forward and dropped after it, gathered again for the
//     recomputation in backward, its gradients reduce-scattered as that backward ends. While a
//     layer is gathered, the gather of the next one (up the layers in forward, down in
//     backward) is already on its way (FSDP's prefetch), so the transfer overlaps the layer's
//     compute: two layers' whole weights exist at a time, besides the root's.
//   - The root unit is gathered before each micro-batch's forward and kept until its backward
//     has run (the embedding is used first and lm_head last), then its gradients are
//     reduce-scattered: FSDP keeps its root unit the same way.
//
// Shards. A parameter of R rows is cut along its first dimension into N blocks of
// r = ceil(R / N) rows, the last padded with zeros. Between uses the parameter's own data is
// this rank's block (Tensor::set_data), so the optimizer, built over the model's parameters,
// steps the shards in place and keeps moments of their shape; shards keep the parameter's
// number of dimensions, so weight decay still goes by it. AdamW is elementwise, so stepping
// the shards steps the whole parameter; the padding gets zero gradients and stays zero.
//
// Gradients. A unit's whole gradients are summed over the shard group and cut the same way, and
// each rank adds its blocks to its shards' .grad, where micro-batches accumulate. Context-
// parallel ranks hold partial gradients of the same parameters, so a shard group spanning them
// sums those too. With hybrid sharding (groups smaller than the world, each holding a copy of
// the shards), the groups' shard gradients are summed over the replica group once per step.
//
// Checkpoints keep whole parameters and whole AdamW state: for a save, Unshard gathers them on
// rank 0 and Reshard cuts them again; a load reads each whole tensor and keeps this rank's block
// (this class is the load's ParameterParts), so no rank ever holds the whole model or AdamW
// state then. A run thus resumes with another N, or without sharding.
//
// Thread-safety: used from the thread that trains; every rank calls the collectives (marked) in
// the same order.
#ifndef PROLONG_TRAINER_PARALLEL_FULLY_SHARDED_H_
#define PROLONG_TRAINER_PARALLEL_FULLY_SHARDED_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "torch/optim/adamw.h"
#include "torch/types.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/model/parameter_parts.h"
#include "trainer/parallel/activation_checkpointing.h"

namespace prolong::parallel {

class ShardedUnit;

class FullySharded final : public model::ParameterParts {
 public:
  // Shards the trainable parameters of `model` (on its device already) in place over `shard`;
  // `replica`, null without hybrid sharding, holds the ranks keeping the same shards in the
  // other groups. Both must outlive this object, and it must outlive the model's use. The
  // decoder layers' matrices are gathered in `layer_dtype` (bfloat16 under mixed precision,
  // as FSDP's param_dtype: half the bytes moved and held), everything else in float32.
  FullySharded(model::LlamaForCausalLM& model, comm::Communicator* shard,
               comm::Communicator* replica, torch::ScalarType layer_dtype = torch::kFloat32);
  ~FullySharded();
  FullySharded(const FullySharded&) = delete;
  FullySharded& operator=(const FullySharded&) = delete;

  // A decoder layer's unit, for CheckpointedLayer; null for a layer not of the model.
  LayerWeights* layer_weights(const model::LlamaDecoderLayer& layer) const;

  // Collective, before each micro-batch's forward: the root unit whole until AfterBackward.
  void BeforeForward();
  // Collective, after that micro-batch's backward: the root unit's gradients reduced into the
  // shards' .grad; the root unit back to its shards.
  void AfterBackward();
  // Collective, once per step after the last AfterBackward: with hybrid sharding, the shards'
  // gradients summed over the replica group in buckets of about `bucket_bytes`.
  void ReduceGradients(int64_t bucket_bytes);
  // After a failed forward or backward: every parameter back to its shard, whole gradients
  // dropped, the shards' .grad as before the micro-batch.
  void Abandon();

  // Collective: on world rank 0, every parameter whole in the model and its AdamW state whole in
  // `optimizer`, on the CPU, as one process holds them, for a checkpoint to save. Call Reshard
  // after.
  void Unshard(torch::optim::AdamW& optimizer);
  // Rank 0 keeps its blocks of what Unshard made whole.
  void Reshard(torch::optim::AdamW& optimizer);

  // ParameterParts, for loading: a trainable parameter's part is this rank's block.
  std::vector<int64_t> WholeShape(const std::string& name) const override;
  torch::Tensor Part(const std::string& name, const torch::Tensor& whole) const override;

  // Ranks in the shard group: the gradient norm sums over them.
  comm::Communicator* shard_group() const { return shard_; }
  // Bytes of whole weights held or arriving now, and at most so far: the root unit's and two
  // layers'.
  int64_t gathered_bytes() const { return gathered_bytes_; }
  int64_t peak_gathered_bytes() const { return peak_gathered_bytes_; }

 private:
  friend class ShardedUnit;
  void CountGathered(int64_t bytes);
  // `unit` is being gathered: starts gathering the layer expected next.
  void Gathering(const ShardedUnit* unit);

  comm::Communicator* shard_;
  comm::Communicator* replica_;
  torch::Device device_ = torch::kCPU;  // the parameters'
  std::unique_ptr<ShardedUnit> root_;
  std::vector<std::unique_ptr<ShardedUnit>> layers_;
  std::map<const model::LlamaDecoderLayer*, ShardedUnit*> unit_of_;
  // Every parameter's whole shape by name, and whether it is sharded (trainable).
  std::map<std::string, std::pair<std::vector<int64_t>, bool>> shapes_;
  int64_t gathered_bytes_ = 0;
  int64_t peak_gathered_bytes_ = 0;
  int last_gathered_ = -1;  // the layer gathered last in this micro-batch
};

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_FULLY_SHARDED_H_
