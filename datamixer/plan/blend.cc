#include "datamixer/plan/blend.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace prolong::plan {

absl::StatusOr<Blend> Blend::Create(absl::Span<const double> proportions, int64_t batch_sequences) {
  if (batch_sequences < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_sequences: must be at least 1, got ", batch_sequences));
  }
  if (proportions.empty()) return absl::InvalidArgumentError("mixture: no domains");
  double sum = 0;
  for (size_t i = 0; i < proportions.size(); ++i) {
    if (!(proportions[i] > 0 && proportions[i] <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("mixture[", i, "].proportion: must be in (0, 1], got ", proportions[i]));
    }
    sum += proportions[i];
  }
  if (std::abs(sum - 1) > 1e-6) {
    return absl::InvalidArgumentError(
        absl::StrCat("mixture: proportions sum to ", sum, ", not 1 (within 1e-6)"));
  }
  Blend blend;
  int64_t base_total = 0;
  for (double p : proportions) {
    // Normalised, so that a sum of 1 - 1e-7 still fills whole batches.
    const double share = p / sum * static_cast<double>(batch_sequences);
    const int64_t base = static_cast<int64_t>(std::floor(share + 1e-9));
    blend.base_.push_back(base);
    blend.fractions_.push_back(std::max(0.0, share - static_cast<double>(base)));
    base_total += base;
  }
  blend.extras_per_batch_ = batch_sequences - base_total;
  blend.extras_given_.assign(proportions.size(), 0);
  return blend;
}

std::vector<int64_t> Blend::Next() {
  ++steps_;
  // Deficit after this batch's entitlement; the extras go to the largest, one per domain.
  std::vector<size_t> order(base_.size());
  std::iota(order.begin(), order.end(), 0);
  auto deficit = [&](size_t i) {
    return fractions_[i] * static_cast<double>(steps_) - static_cast<double>(extras_given_[i]);
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return deficit(a) > deficit(b) + 1e-9; });
  std::vector<int64_t> counts = base_;
  for (int64_t k = 0; k < extras_per_batch_; ++k) {
    ++counts[order[k]];
    ++extras_given_[order[k]];
  }
  return counts;
}

}  // namespace prolong::plan
