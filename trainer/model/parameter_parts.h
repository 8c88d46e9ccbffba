// What a rank keeps of each parameter when it keeps only a part (sharded weights): loading a
// checkpoint then reads each whole tensor and keeps its part, weights and AdamW moments alike,
// so that no rank ever holds the whole model or optimizer state.
#ifndef PROLONG_TRAINER_MODEL_PARAMETER_PARTS_H_
#define PROLONG_TRAINER_MODEL_PARAMETER_PARTS_H_

#include <string>
#include <vector>

#include "torch/types.h"

namespace prolong::model {

class ParameterParts {
 public:
  virtual ~ParameterParts() = default;
  // The whole parameter's shape (what a checkpoint holds); empty for a name of no parameter.
  virtual std::vector<int64_t> WholeShape(const std::string& name) const = 0;
  // This rank's part of `whole`, the parameter `name`'s whole value or a moment of its shape:
  // a new tensor, of the part's shape.
  virtual torch::Tensor Part(const std::string& name, const torch::Tensor& whole) const = 0;
};

}  // namespace prolong::model

#endif  // PROLONG_TRAINER_MODEL_PARAMETER_PARTS_H_
