// What a plan needs to know of the data: every domain's documents (ids and lengths, in index
// key order) and the fingerprint that identifies them. Loaded from the store's index alone.
#ifndef PROLONG_DATAMIXER_PLAN_DATA_INDEX_H_
#define PROLONG_DATAMIXER_PLAN_DATA_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/store/shard.h"

namespace prolong::plan {

struct DomainIndex {
  std::string name;
  // Document i's 16-byte id is ids.substr(16 * i, 16): one flat string, not a string each.
  std::string ids;
  std::shared_ptr<const std::vector<int64_t>> lengths;
  int64_t tokens = 0;

  int64_t documents() const { return static_cast<int64_t>(lengths->size()); }
  store::DocumentId id(int64_t document) const { return ids.substr(16 * document, 16); }
};

struct DataIndex {
  std::string fingerprint;
  std::vector<DomainIndex> domains;  // Sorted by name.

  // nullptr if there is no such domain.
  const DomainIndex* Find(absl::string_view name) const;
};

absl::StatusOr<std::shared_ptr<const DataIndex>> LoadDataIndex(const store::Shard& shard);

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_DATA_INDEX_H_
