// Reads every document of a store back and checks it against its id (SHA-256 of its tokens and
// loss mask) and its indexed length: the check after a disk or a copy is suspected, since a
// corrupt block is DATA_LOSS when read, and a value that reads but is not what was written
// only shows against its id. Only the index and one document at a time are held in memory.
//
// Thread-safety: plain functions; the shard may be read by others meanwhile.
#ifndef PROLONG_DATAMIXER_STORE_VERIFY_H_
#define PROLONG_DATAMIXER_STORE_VERIFY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/store/shard.h"

namespace prolong::store {

// A document that did not verify, and why (a read error's status message names the document
// and, from RocksDB, the file).
struct BadDocument {
  std::string domain;
  DocumentId id;
  std::string source;
  std::string problem;
};

struct VerifyReport {
  int64_t documents = 0;  // read back, good or bad
  int64_t tokens = 0;     // of the good ones
  std::vector<BadDocument> bad;
};

// Verifies the documents of `domain` ("" for every domain). `progress`, when given, is called
// after each document with the report so far. An error only when the index cannot be scanned;
// a bad document is reported and the scan goes on.
absl::StatusOr<VerifyReport> VerifyDocuments(
    const Shard& shard, absl::string_view domain,
    const std::function<void(const VerifyReport&)>& progress = nullptr);

}  // namespace prolong::store

#endif  // PROLONG_DATAMIXER_STORE_VERIFY_H_
