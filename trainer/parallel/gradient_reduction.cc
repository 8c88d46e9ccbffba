#include "trainer/parallel/gradient_reduction.h"

#include <utility>

#include "torch/csrc/autograd/function.h"
#include "torch/csrc/autograd/function_hook.h"
#include "torch/csrc/autograd/variable.h"

namespace prolong::parallel {
namespace {

using torch::Tensor;

// The bucket's gradients, flat and concatenated; zeros for a parameter without one.
Tensor Flatten(const std::vector<Tensor>& parameters, const std::vector<size_t>& bucket) {
  std::vector<Tensor> flat;
  flat.reserve(bucket.size());
  for (size_t i : bucket) {
    const Tensor& parameter = parameters[i];
    flat.push_back(
        (parameter.grad().defined() ? parameter.grad() : torch::zeros_like(parameter)).view(-1));
  }
  return torch::cat(flat);
}

// Writes the summed bucket back into the gradients.
void Unflatten(const Tensor& sums, const std::vector<Tensor>& parameters,
               const std::vector<size_t>& bucket) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (size_t i : bucket) {
    Tensor parameter = parameters[i];
    const int64_t n = parameter.numel();
    const Tensor reduced = sums.narrow(0, offset, n).view_as(parameter);
    if (parameter.grad().defined()) {
      parameter.mutable_grad().copy_(reduced);
    } else {
      parameter.mutable_grad() = reduced.clone();
    }
    offset += n;
  }
}

}  // namespace

std::vector<std::vector<size_t>> PlanGradientBuckets(const std::vector<Tensor>& parameters,
                                                     int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = parameters.size(); i-- > 0;) {
    const Tensor& parameter = parameters[i];
    const int64_t parameter_bytes = parameter.numel() * parameter.element_size();
    if (!buckets.empty()) {
      const Tensor& first = parameters[buckets.back().front()];
      if (parameter.scalar_type() == first.scalar_type() && parameter.device() == first.device() &&
          bytes + parameter_bytes <= bucket_bytes) {
        buckets.back().push_back(i);
        bytes += parameter_bytes;
        continue;
      }
    }
    buckets.push_back({i});
    bytes = parameter_bytes;
  }
  return buckets;
}

void AllReduceGradients(const std::vector<Tensor>& parameters, comm::Communicator& comm,
                        int64_t bucket_bytes) {
  for (const std::vector<size_t>& bucket : PlanGradientBuckets(parameters, bucket_bytes)) {
    Tensor flat = Flatten(parameters, bucket);
    comm.AllReduceSum(flat);
    Unflatten(flat, parameters, bucket);
  }
}

// Runs after a parameter's AccumulateGrad node, that is once its .grad holds everything this
// backward pass adds. A hook on the tensor itself (Tensor::register_hook) would run before the
// accumulation, so it would have to add earlier micro-batches' gradients itself, and newer
// LibTorch versions also run it for torch::autograd::grad's captured inputs, which activation
// checkpointing's recomputation produces for the same parameters. The accumulator runs once per
// backward pass, recomputation or not.
class OverlappedGradientReduction::ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(OverlappedGradientReduction* reduction, size_t parameter)
      : reduction_(reduction), parameter_(parameter) {}

  torch::autograd::variable_list operator()(
      const torch::autograd::variable_list& outputs,
      const torch::autograd::variable_list& /*inputs*/) override {
    reduction_->MarkReady(parameter_);
    return outputs;
  }

 private:
  OverlappedGradientReduction* reduction_;
  size_t parameter_;
};

OverlappedGradientReduction::OverlappedGradientReduction(std::vector<Tensor> parameters,
                                                         comm::Communicator* comm,
                                                         int64_t bucket_bytes)
    : parameters_(std::move(parameters)),
      comm_(comm),
      buckets_(PlanGradientBuckets(parameters_, bucket_bytes)),
      bucket_of_(parameters_.size()) {
  for (size_t b = 0; b < buckets_.size(); ++b) {
    for (size_t i : buckets_[b]) bucket_of_[i] = b;
  }
}

OverlappedGradientReduction::~OverlappedGradientReduction() { Disarm(); }

void OverlappedGradientReduction::Arm() {
  Disarm();
  ready_.assign(parameters_.size(), false);
  missing_.clear();
  for (const std::vector<size_t>& bucket : buckets_) missing_.push_back(bucket.size());
  next_bucket_ = 0;
  flat_.clear();
  pending_.clear();
  // The accumulator is created on demand and held only weakly by its parameter: holding it
  // here makes the coming forward pass use this one.
  for (size_t i = 0; i < parameters_.size(); ++i) {
    std::shared_ptr<torch::autograd::Node> accumulator =
        torch::autograd::impl::grad_accumulator(parameters_[i]);
    TORCH_CHECK(accumulator != nullptr, "parameter ", i, " is not a leaf that requires grad");
    hook_keys_.push_back(accumulator->add_post_hook(std::make_unique<ReadyHook>(this, i)));
    accumulators_.push_back(std::move(accumulator));
  }
}

void OverlappedGradientReduction::Disarm() {
  for (size_t i = 0; i < accumulators_.size(); ++i) {
    accumulators_[i]->del_post_hook(hook_keys_[i]);
  }
  accumulators_.clear();
  hook_keys_.clear();
}

void OverlappedGradientReduction::MarkReady(size_t parameter) {
  if (ready_[parameter]) {
    // A second accumulation in the same pass (a parameter reached by two separate backward
    // calls): fine until its bucket has left.
    TORCH_CHECK(bucket_of_[parameter] >= next_bucket_, "the gradient of parameter ", parameter,
                " changed after its bucket was all-reduced");
    return;
  }
  ready_[parameter] = true;
  --missing_[bucket_of_[parameter]];
  while (next_bucket_ < buckets_.size() && missing_[next_bucket_] == 0) Launch(next_bucket_++);
}

void OverlappedGradientReduction::Launch(size_t bucket) {
  flat_.push_back(Flatten(parameters_, buckets_[bucket]));
  pending_.push_back(comm_->AllReduceSumAsync(flat_.back()));
}

void OverlappedGradientReduction::Finish() {
  Disarm();
  if (missing_.size() != buckets_.size()) {  // not armed this step
    next_bucket_ = 0;
    flat_.clear();
    pending_.clear();
  }
  while (next_bucket_ < buckets_.size()) Launch(next_bucket_++);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    pending_[b]->Wait();
    Unflatten(flat_[b], parameters_, buckets_[b]);
  }
  flat_.clear();
  pending_.clear();
  missing_.clear();
}

void OverlappedGradientReduction::Abandon() {
  Disarm();
  flat_.clear();
  pending_.clear();
  missing_.clear();
}

}  // namespace prolong::parallel
