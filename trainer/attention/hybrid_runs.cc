#include "trainer/attention/hybrid_runs.h"

#include <cstddef>

namespace prolong::attention {

std::vector<HybridRun> HybridRuns(const std::vector<int64_t>& bounds,
                                  int64_t long_document_tokens) {
  std::vector<HybridRun> runs;
  for (std::size_t d = 0, end = 1; d + 1 < bounds.size(); d = end, end = d + 1) {
    const bool long_document = bounds[end] - bounds[d] >= long_document_tokens;
    while (!long_document && end + 1 < bounds.size() &&
           bounds[end + 1] - bounds[end] < long_document_tokens) {
      ++end;
    }
    runs.push_back({bounds[d], bounds[end] - bounds[d], long_document});
  }
  return runs;
}

}  // namespace prolong::attention
