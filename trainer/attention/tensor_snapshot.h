// Whether a tensor is one seen before, unchanged: the same tensor (not merely equal values) at
// the same version (in-place changes advance it). Lets work derived from a layout (plans,
// document bounds, gathered layouts) be reused by every layer that attends with it, without
// reading the layout back from a GPU to compare.
#ifndef PROLONG_TRAINER_ATTENTION_TENSOR_SNAPSHOT_H_
#define PROLONG_TRAINER_ATTENTION_TENSOR_SNAPSHOT_H_

#include <cstdint>
#include <utility>

#include "torch/types.h"

namespace prolong::attention {

class TensorSnapshot {
 public:
  TensorSnapshot() = default;
  // Holds `tensor`, so that its address is not reused by another tensor while kept.
  explicit TensorSnapshot(torch::Tensor tensor)
      : version_(tensor._version()), tensor_(std::move(tensor)) {}

  bool Is(const torch::Tensor& t) const {
    return tensor_.defined() && t.unsafeGetTensorImpl() == tensor_.unsafeGetTensorImpl() &&
           t._version() == version_;
  }

 private:
  int64_t version_ = 0;
  torch::Tensor tensor_;
};

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_TENSOR_SNAPSHOT_H_
