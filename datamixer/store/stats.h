// What a shard holds, from its index alone (no token data is read): per-domain document and
// token counts with a length histogram, and the fingerprint that identifies the data a plan
// was made from.
#ifndef PROLONG_DATAMIXER_STORE_STATS_H_
#define PROLONG_DATAMIXER_STORE_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datamixer/store/shard.h"

namespace prolong::store {

struct LengthBucket {
  // Documents with length in (previous bound, upper_bound]; 0 marks the last, unbounded one.
  int64_t upper_bound = 0;
  int64_t documents = 0;
  int64_t tokens = 0;
};

struct DomainStats {
  std::string name;
  int64_t documents = 0;
  int64_t tokens = 0;
  int64_t min_length = 0;
  int64_t max_length = 0;
  // Bounds 1K, 2K, 4K, ... 1M tokens, then unbounded: ProLong's 64K and 512K cut-offs are
  // bucket edges.
  std::vector<LengthBucket> histogram;
};

// One entry per domain, sorted by name; only `domain` if it is not empty.
absl::StatusOr<std::vector<DomainStats>> ComputeDomainStats(const Shard& shard,
                                                            absl::string_view domain = "");

// Hex SHA-256 over every (domain, document id, length) in key order: equal for equal data
// whatever the order it was ingested in, different as soon as a document is added.
absl::StatusOr<std::string> ComputeFingerprint(const Shard& shard);

}  // namespace prolong::store

#endif  // PROLONG_DATAMIXER_STORE_STATS_H_
