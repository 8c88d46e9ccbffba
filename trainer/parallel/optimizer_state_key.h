// How a LibTorch optimizer finds a parameter's state: its state() map is keyed by the
// parameter's TensorImpl, in 1.13 as the pointer printed to a string (c10::guts::to_string),
// in later versions as the pointer itself. Shared by checkpoints and ZeRO-1, which reach into
// that map.
#ifndef PROLONG_TRAINER_PARALLEL_OPTIMIZER_STATE_KEY_H_
#define PROLONG_TRAINER_PARALLEL_OPTIMIZER_STATE_KEY_H_

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "torch/optim/optimizer.h"
#include "torch/types.h"

namespace prolong::parallel {

using OptimizerStateMap = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using OptimizerStateKey = OptimizerStateMap::key_type;

template <typename Key = OptimizerStateKey>
Key OptimizerStateKeyOf(const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << parameter.unsafeGetTensorImpl();
    return key.str();
  } else {
    return static_cast<Key>(parameter.unsafeGetTensorImpl());
  }
}

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_OPTIMIZER_STATE_KEY_H_
