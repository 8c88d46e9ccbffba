#include "trainer/train/trainer_options.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace prolong::train {

absl::Status ValidateTrainerOptions(const TrainerOptions& options) {
  const AdamWOptions& adamw = options.adamw;
  for (const auto& [name, beta] : {std::pair<const char*, double>{"adamw.beta1", adamw.beta1},
                                   std::pair<const char*, double>{"adamw.beta2", adamw.beta2}}) {
    if (!(beta >= 0 && beta < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be in [0, 1), got ", beta));
    }
  }
  if (!(adamw.epsilon >= 0 && std::isfinite(adamw.epsilon))) {
    return absl::InvalidArgumentError(
        absl::StrCat("adamw.epsilon must be finite and >= 0, got ", adamw.epsilon));
  }
  if (!(adamw.weight_decay >= 0 && std::isfinite(adamw.weight_decay))) {
    return absl::InvalidArgumentError(
        absl::StrCat("adamw.weight_decay must be finite and >= 0, got ", adamw.weight_decay));
  }
  if (!(options.grad_clip_norm >= 0 && std::isfinite(options.grad_clip_norm))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "grad_clip_norm must be finite and >= 0 (0: off), got ", options.grad_clip_norm));
  }
  if (options.logit_block_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("logit_block_size must be >= 1, got ", options.logit_block_size));
  }
  return absl::OkStatus();
}

}  // namespace prolong::train
