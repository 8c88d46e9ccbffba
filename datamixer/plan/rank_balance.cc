#include "datamixer/plan/rank_balance.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace prolong::plan {

absl::StatusOr<std::vector<std::vector<int64_t>>> BalanceDataParallel(
    absl::Span<const double> costs, int dp_size, int64_t micro_batch_sequences) {
  const int64_t batch = static_cast<int64_t>(costs.size());
  RETURN_IF_ERROR(ValidateRank({0, dp_size, 0, 1, micro_batch_sequences}, batch));
  for (int64_t j = 0; j < batch; ++j) {
    // A NaN would break the sort's ordering; a negative cost is no attention work.
    if (!std::isfinite(costs[j]) || costs[j] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("costs[", j, "]: must be finite and not negative, got ", costs[j]));
    }
  }
  std::vector<int64_t> order(batch);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return costs[a] != costs[b] ? costs[a] > costs[b] : a < b;
  });

  const int64_t rounds = batch / dp_size;
  const int64_t window = micro_batch_sequences == 0 ? rounds : micro_batch_sequences;
  std::vector<std::vector<int64_t>> layout(dp_size);
  for (std::vector<int64_t>& positions : layout) positions.reserve(rounds);
  std::vector<double> load(dp_size, 0);
  std::vector<int> ranks(dp_size);
  for (int64_t round = 0; round < rounds; ++round) {
    if (round % window == 0) std::fill(load.begin(), load.end(), 0.0);
    std::iota(ranks.begin(), ranks.end(), 0);
    std::sort(ranks.begin(), ranks.end(),
              [&](int a, int b) { return load[a] != load[b] ? load[a] < load[b] : a < b; });
    for (int k = 0; k < dp_size; ++k) {
      const int64_t position = order[round * dp_size + k];
      layout[ranks[k]].push_back(position);
      load[ranks[k]] += costs[position];
    }
  }
  return layout;
}

absl::StatusOr<std::vector<int64_t>> DataParallelSequences(absl::Span<const double> costs,
                                                           const Rank& rank) {
  RETURN_IF_ERROR(ValidateRank(rank, static_cast<int64_t>(costs.size())));
  ASSIGN_OR_RETURN(std::vector<std::vector<int64_t>> layout,
                   BalanceDataParallel(costs, rank.dp_size, rank.micro_batch_sequences));
  return std::move(layout[rank.dp_rank]);
}

std::vector<std::vector<int64_t>> ContiguousDataParallel(int64_t batch_sequences, int dp_size) {
  std::vector<std::vector<int64_t>> layout(dp_size);
  for (int r = 0; r < dp_size; ++r) {
    const Range slice = DataParallelSlice(batch_sequences, {r, dp_size, 0, 1});
    for (int64_t j = slice.begin; j < slice.end; ++j) layout[r].push_back(j);
  }
  return layout;
}

double StepImbalance(absl::Span<const double> costs,
                     const std::vector<std::vector<int64_t>>& layout,
                     int64_t micro_batch_sequences) {
  if (layout.empty() || layout[0].empty()) return 1;
  const int64_t per_rank = static_cast<int64_t>(layout[0].size());
  const int64_t window = micro_batch_sequences == 0 ? per_rank : micro_batch_sequences;
  double slowest = 0, total = 0;
  for (int64_t begin = 0; begin < per_rank; begin += window) {
    const int64_t end = std::min(per_rank, begin + window);
    double max_load = 0;
    for (const std::vector<int64_t>& positions : layout) {
      double load = 0;
      for (int64_t i = begin; i < end; ++i) load += costs[positions[i]];
      max_load = std::max(max_load, load);
      total += load;
    }
    slowest += max_load;
  }
  return total > 0 ? slowest * static_cast<double>(layout.size()) / total : 1;
}

}  // namespace prolong::plan
