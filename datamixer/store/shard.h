// One RocksDB shard of tokenized documents.
//
// Layout (column families):
//   "index"  domain '\0' document id -> varint length, source     (small: plans read only this)
//   "tokens" domain '\0' document id -> encoded token ids          (large: kept in blob files)
//   "masks"  domain '\0' document id -> loss mask, one byte a token (SFT documents only)
// A document id is the first 16 bytes of SHA-256 over its tokens and loss mask, so adding the
// same document twice stores it once. Token ids are packed at the narrowest width that holds
// the largest id (2, 3 or 4 bytes) and the blob files are zstd-compressed. A document longer
// than ShardOptions::chunk_tokens has its tokens and mask stored in chunks of that many tokens
// (internal/value_layout.h), so that a read of a slice decompresses only the chunks it
// overlaps: a plan that walks a long document sequence by sequence reads each byte once.
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
class WriteBatch;
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

struct ShardOptions {
  // Documents longer than this are written in chunks of this many tokens; 0 writes every
  // document as one value (the only layout before chunking, kept for comparisons). Readers
  // need no setting: each document records its own layout. 16K divides every power-of-two
  // sequence length from 16K up, so a long-domain sequence (a seq_len-aligned slice) reads
  // whole chunks, and a chunk (32 to 64 KB) costs one blob read.
  int64_t chunk_tokens = 16384;
};

// The id a document gets: SHA-256 of its tokens and loss mask, first 16 bytes.
DocumentId ComputeDocumentId(absl::Span<const uint32_t> tokens, absl::string_view loss_mask);

// Lowercase hex, for messages and listings.
std::string HexId(const DocumentId& id);

class Shard {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Creates the shard in read-write mode if absent. NOT_FOUND for a missing read-only shard,
  // FAILED_PRECONDITION if it is locked by a writer or unreadable, INVALID_ARGUMENT for bad
  // options.
  static absl::StatusOr<std::unique_ptr<Shard>> Open(const std::string& dir, Mode mode,
                                                     const ShardOptions& options = {});
  // A writer flushes what it wrote into table and blob files, so that readers opened later
  // neither replay its log nor hold its memtable.
  ~Shard();

  // Stores the documents in one atomic, synced write: after a crash each batch is wholly
  // present or absent. INVALID_ARGUMENT (naming the document's source) for an empty document,
  // a bad domain name or a mask of the wrong length; nothing is written then.
  absl::StatusOr<BatchResult> AddBatch(absl::Span<const Document> documents);

  // Calls `visit` for each document of `domain` ("" for every domain), in key order, reading
  // only the index.
  absl::Status ScanIndex(absl::string_view domain,
                         const std::function<void(const IndexEntry&)>& visit) const;

  // Tokens [offset, offset + length) of a document (length -1: to the end), reading only the
  // chunks they lie in. NOT_FOUND for an unknown document, OUT_OF_RANGE past its end,
  // DATA_LOSS (naming the document, and for a damaged file the shard's directory) for a corrupt
  // or missing value.
  absl::StatusOr<std::vector<uint32_t>> ReadTokens(absl::string_view domain, const DocumentId& id,
                                                   int64_t offset = 0, int64_t length = -1) const;
  // Entries [offset, offset + length) of the loss mask, as ReadTokens reads tokens; "" when
  // every token is a target (or the document is unknown).
  absl::StatusOr<std::string> ReadLossMask(absl::string_view domain, const DocumentId& id,
                                           int64_t offset = 0, int64_t length = -1) const;

  // Reads every table and blob file whole and checks it against its checksums: each table
  // block's, and each file's own as recorded when it was written (files written before the
  // shard recorded them are checked block by block only). DATA_LOSS naming the first damaged
  // file.
  absl::Status VerifyFiles() const;

 private:
  Shard() = default;

  // Adds a new document's tokens and mask to `batch` under `key`, chunked if it is long.
  void PutValues(const Document& document, const std::string& key,
                 rocksdb::WriteBatch& batch) const;

  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, index, tokens, masks.
  bool read_only_ = false;
  ShardOptions options_;
};

}  // namespace prolong::store

#endif  // PROLONG_DATAMIXER_STORE_SHARD_H_
