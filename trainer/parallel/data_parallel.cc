#include "trainer/parallel/data_parallel.h"

#include "absl/strings/str_cat.h"
#include "trainer/parallel/fully_sharded.h"
#include "trainer/parallel/gradient_reduction.h"
#include "trainer/parallel/sharded_optimizer.h"

namespace prolong::parallel {

absl::StatusOr<std::unique_ptr<DataParallel>> DataParallel::Create(
    std::vector<std::pair<std::string, torch::Tensor>> parameters, comm::Communicator* world,
    const ParallelPlan& plan, std::shared_ptr<FullySharded> sharded) {
  std::vector<torch::Tensor> tensors;
  for (const auto& [name, p] : parameters) tensors.push_back(p);
  if (sharded == nullptr && world != nullptr && plan.shard_optimizer_state && world->size() > 1) {
    // ZeRO-1 moves parameters and moments through flat buffers of one dtype.
    for (const torch::Tensor& p : tensors) {
      if (p.scalar_type() != tensors.front().scalar_type() ||
          p.device() != tensors.front().device()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "shard_optimizer_state needs every trainable parameter in one dtype on one device; "
            "found ",
            c10::toString(tensors.front().scalar_type()), " on ", tensors.front().device().str(),
            " and ", c10::toString(p.scalar_type()), " on ", p.device().str()));
      }
    }
  }
  std::unique_ptr<DataParallel> data_parallel(
      new DataParallel(std::move(tensors), world, plan, std::move(sharded)));
  if (data_parallel->sharding_ != nullptr) {
    for (size_t i = 0; i < parameters.size(); ++i) {
      if (!data_parallel->sharding_->owns(i)) {
        data_parallel->others_parameters_.insert(parameters[i].first);
      }
    }
  }
  return data_parallel;
}

DataParallel::DataParallel(std::vector<torch::Tensor> parameters, comm::Communicator* world,
                           const ParallelPlan& plan, std::shared_ptr<FullySharded> sharded)
    : parameters_(std::move(parameters)),
      world_(world),
      bucket_bytes_(plan.bucket_bytes),
      buckets_(PlanGradientBuckets(parameters_, bucket_bytes_).size()),
      sharded_(std::move(sharded)) {
  if (world_ == nullptr || sharded_ != nullptr) return;
  if (plan.overlap_grad_reduce) {
    overlapped_ = std::make_unique<OverlappedGradientReduction>(parameters_, world_, bucket_bytes_);
  }
  if (plan.shard_optimizer_state && world_->size() > 1) {
    sharding_ = std::make_unique<OptimizerSharding>(parameters_, world_, bucket_bytes_);
  }
}

DataParallel::~DataParallel() = default;

void DataParallel::BeforeForward() {
  if (sharded_ != nullptr) sharded_->BeforeForward();
}

void DataParallel::AfterBackward() {
  if (sharded_ != nullptr) sharded_->AfterBackward();
}

void DataParallel::BeforeLastBackward() {
  if (overlapped_ != nullptr) overlapped_->Arm();
}

void DataParallel::ReduceGradients() {
  if (sharded_ != nullptr) {
    sharded_->ReduceGradients(bucket_bytes_);
  } else if (overlapped_ != nullptr) {
    overlapped_->Finish();
  } else if (world_ != nullptr) {
    AllReduceGradients(parameters_, *world_, bucket_bytes_);
  }
}

void DataParallel::Abandon() {
  if (sharded_ != nullptr) sharded_->Abandon();
  if (overlapped_ != nullptr) overlapped_->Abandon();
}

void DataParallel::Step(torch::optim::AdamW& optimizer) {
  if (sharding_ == nullptr) {
    optimizer.step();
    return;
  }
  // Each rank steps its own parameters with the full clipped gradients, then all take the
  // others' from their owners.
  sharding_->Step(optimizer);
  sharding_->BroadcastParameters();
}

void DataParallel::GatherState(torch::optim::AdamW& optimizer) {
  if (sharded_ != nullptr) sharded_->Unshard(optimizer);
  if (sharding_ != nullptr) sharding_->GatherState(optimizer);
}

void DataParallel::ShardState(torch::optim::AdamW& optimizer) {
  if (sharded_ != nullptr) sharded_->Reshard(optimizer);
  if (sharding_ != nullptr) sharding_->DropOthersState(optimizer);
}

comm::Communicator* DataParallel::gradient_norm_group() const {
  return sharded_ == nullptr ? nullptr : sharded_->shard_group();
}

}  // namespace prolong::parallel
