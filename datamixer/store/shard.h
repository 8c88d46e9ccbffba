// One RocksDB shard of tokenized documents.
//
// Layout (column families):
//   "index"  domain '\0' document id -> varint length, source     (small: plans read only this)
//   "tokens" domain '\0' document id -> encoded token ids          (large: kept in blob files)
//   "masks"  domain '\0' document id -> loss mask, one byte a token (SFT documents only)
// A document id is the first 16 bytes of SHA-256 over its tokens and loss mask, so adding the
// same document twice stores it once. Token ids are packed at the narrowest width that holds
// the document's largest id (2, 3 or 4 bytes) and the blob files are zstd-compressed.
//
// Thread-safety: a writable shard accepts AddBatch from many threads; any number of processes
// may open the same shard read-only at once (not while a writer has it open).
#ifndef PROLONG_DATAMIXER_STORE_SHARD_H_
#define PROLONG_DATAMIXER_STORE_SHARD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace prolong::store {

// 16 raw bytes.
using DocumentId = std::string;

struct Document {
  std::string domain;
  std::string source;
  std::vector<uint32_t> tokens;
  // Empty: every token is a target. Otherwise one byte (0 or 1) per token.
  std::string loss_mask;
};

// What the index knows of a document, without its tokens.
struct IndexEntry {
  std::string domain;
  DocumentId id;
  int64_t length = 0;
  std::string source;
};

struct BatchResult {
  int64_t added = 0;
  int64_t duplicates = 0;  // Already stored, or repeated within the batch.
  int64_t tokens_added = 0;
};

// The id a document gets: SHA-256 of its tokens and loss mask, first 16 bytes.
DocumentId ComputeDocumentId(absl::Span<const uint32_t> tokens, absl::string_view loss_mask);

// Lowercase hex, for messages and listings.
std::string HexId(const DocumentId& id);

class Shard {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Creates the shard in read-write mode if absent. NOT_FOUND for a missing read-only shard,
  // FAILED_PRECONDITION if it is locked by a writer or unreadable.
  static absl::StatusOr<std::unique_ptr<Shard>> Open(const std::string& dir, Mode mode);
  ~Shard();

  // Stores the documents in one atomic, synced write: after a crash each batch is wholly
  // present or absent. INVALID_ARGUMENT (naming the document's source) for an empty document,
  // a bad domain name or a mask of the wrong length; nothing is written then.
  absl::StatusOr<BatchResult> AddBatch(absl::Span<const Document> documents);

  // Calls `visit` for each document of `domain` ("" for every domain), in key order, reading
  // only the index.
  absl::Status ScanIndex(absl::string_view domain,
                         const std::function<void(const IndexEntry&)>& visit) const;

  // Tokens [offset, offset + length) of a document (length -1: to the end). NOT_FOUND for an
  // unknown document, OUT_OF_RANGE past its end.
  absl::StatusOr<std::vector<uint32_t>> ReadTokens(absl::string_view domain, const DocumentId& id,
                                                   int64_t offset = 0, int64_t length = -1) const;
  // The loss mask, "" when every token is a target.
  absl::StatusOr<std::string> ReadLossMask(absl::string_view domain, const DocumentId& id) const;

 private:
  Shard() = default;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, index, tokens, masks.
  bool read_only_ = false;
};

}  // namespace prolong::store

#endif  // PROLONG_DATAMIXER_STORE_SHARD_H_
