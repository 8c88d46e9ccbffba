#include "datamixer/store/stats.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace prolong::store {
namespace {

constexpr int64_t kSmallestBound = 1 << 10;
constexpr int64_t kLargestBound = 1 << 20;

std::vector<LengthBucket> EmptyHistogram() {
  std::vector<LengthBucket> buckets;
  for (int64_t bound = kSmallestBound; bound <= kLargestBound; bound *= 2) {
    buckets.push_back({bound, 0, 0});
  }
  buckets.push_back({0, 0, 0});
  return buckets;
}

LengthBucket& BucketFor(std::vector<LengthBucket>& buckets, int64_t length) {
  for (LengthBucket& bucket : buckets) {
    if (bucket.upper_bound == 0 || length <= bucket.upper_bound) return bucket;
  }
  return buckets.back();
}

}  // namespace

absl::StatusOr<std::vector<DomainStats>> ComputeDomainStats(const Shard& shard,
                                                            absl::string_view domain) {
  std::vector<DomainStats> domains;
  RETURN_IF_ERROR(shard.ScanIndex(domain, [&](const IndexEntry& entry) {
    // The index is in key order, so a domain's documents are contiguous.
    if (domains.empty() || domains.back().name != entry.domain) {
      domains.push_back({entry.domain, 0, 0, entry.length, entry.length, EmptyHistogram()});
    }
    DomainStats& stats = domains.back();
    ++stats.documents;
    stats.tokens += entry.length;
    stats.min_length = std::min(stats.min_length, entry.length);
    stats.max_length = std::max(stats.max_length, entry.length);
    LengthBucket& bucket = BucketFor(stats.histogram, entry.length);
    ++bucket.documents;
    bucket.tokens += entry.length;
  }));
  return domains;
}

absl::StatusOr<std::string> ComputeFingerprint(const Shard& shard) {
  Sha256 hasher;
  RETURN_IF_ERROR(shard.ScanIndex("", [&](const IndexEntry& entry) {
    const uint64_t length = static_cast<uint64_t>(entry.length);
    hasher.Update(entry.domain);
    hasher.Update("", 1);  // The domain's terminator: "ab"+"c" differs from "a"+"bc".
    hasher.Update(entry.id);
    hasher.Update(&length, sizeof(length));
  }));
  return absl::BytesToHexString(hasher.Finish());
}

}  // namespace prolong::store
