#include "datamixer/plan/data_index.h"

#include <utility>

#include "common/status_macros.h"
#include "datamixer/store/stats.h"

namespace prolong::plan {

const DomainIndex* DataIndex::Find(absl::string_view name) const {
  for (const DomainIndex& domain : domains) {
    if (domain.name == name) return &domain;
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const DataIndex>> LoadDataIndex(const store::Shard& shard) {
  auto index = std::make_shared<DataIndex>();
  ASSIGN_OR_RETURN(index->fingerprint, store::ComputeFingerprint(shard));
  std::vector<int64_t> lengths;
  auto finish_domain = [&] {
    if (index->domains.empty()) return;
    index->domains.back().lengths =
        std::make_shared<const std::vector<int64_t>>(std::move(lengths));
    lengths.clear();
  };
  RETURN_IF_ERROR(shard.ScanIndex("", [&](const store::IndexEntry& entry) {
    // Key order keeps a domain's documents together, and domains sorted by name.
    if (index->domains.empty() || index->domains.back().name != entry.domain) {
      finish_domain();
      index->domains.push_back({entry.domain, "", nullptr, 0});
    }
    DomainIndex& domain = index->domains.back();
    domain.ids += entry.id;
    domain.tokens += entry.length;
    lengths.push_back(entry.length);
  }));
  finish_domain();
  return index;
}

}  // namespace prolong::plan
