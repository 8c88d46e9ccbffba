#include "datamixer/store/verify.h"

#include "absl/strings/str_cat.h"

namespace prolong::store {

absl::StatusOr<VerifyReport> VerifyDocuments(
    const Shard& shard, absl::string_view domain,
    const std::function<void(const VerifyReport&)>& progress) {
  VerifyReport report;
  const absl::Status scanned = shard.ScanIndex(domain, [&](const IndexEntry& entry) {
    ++report.documents;
    auto fail = [&](std::string problem) {
      report.bad.push_back({entry.domain, entry.id, entry.source, std::move(problem)});
    };
    absl::StatusOr<std::vector<uint32_t>> tokens = shard.ReadTokens(entry.domain, entry.id);
    absl::StatusOr<std::string> mask =
        tokens.ok() ? shard.ReadLossMask(entry.domain, entry.id) : tokens.status();
    if (!mask.ok()) {
      fail(std::string(mask.status().message()));
    } else if (static_cast<int64_t>(tokens->size()) != entry.length) {
      fail(absl::StrCat("has ", tokens->size(), " tokens; the index says ", entry.length));
    } else if (ComputeDocumentId(*tokens, *mask) != entry.id) {
      fail(absl::StrCat("its tokens and loss mask hash to ",
                        HexId(ComputeDocumentId(*tokens, *mask)), ", not to its id"));
    } else {
      report.tokens += entry.length;
    }
    if (progress) progress(report);
  });
  if (!scanned.ok()) return scanned;
  return report;
}

}  // namespace prolong::store
