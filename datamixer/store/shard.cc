#include "datamixer/store/shard.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "datamixer/store/internal/value_layout.h"
#include "rocksdb/db.h"
#include "rocksdb/file_checksum.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"

namespace prolong::store {
namespace {

enum Family { kDefault = 0, kIndex = 1, kTokens = 2, kMasks = 3 };
constexpr const char* kFamilyNames[] = {"default", "index", "tokens", "masks"};
constexpr size_t kIdBytes = 16;

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  if (status.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, ": ", status.ToString()));
  if (status.IsIOError() && absl::StrContains(status.ToString(), "lock")) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": in use by another writer (", status.ToString(), ")"));
  }
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", status.ToString()));
}

bool ValidDomain(absl::string_view domain) {
  if (domain.empty() || domain.size() > 63) return false;
  return std::all_of(domain.begin(), domain.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// Debian's Abseil has its own string_view, which rocksdb::Slice does not take.
rocksdb::Slice ToSlice(absl::string_view bytes) {
  return rocksdb::Slice(bytes.data(), bytes.size());
}

std::string DocumentName(absl::string_view domain, const DocumentId& id) {
  return absl::StrCat("document ", domain, "/", HexId(id));
}

// A failed read of one of a document's values: corruption is DATA_LOSS, naming the document and
// the shard's directory. RocksDB names a damaged table file itself, but of a blob file it only
// says that a record's CRC mismatched: Shard::VerifyFiles, which reads every file, names it.
absl::Status ReadError(const rocksdb::Status& status, absl::string_view dir,
                       absl::string_view domain, const DocumentId& id) {
  if (status.IsCorruption()) {
    return absl::DataLossError(absl::StrCat(DocumentName(domain, id), ": ", status.ToString(),
                                            " (a damaged file in ", dir,
                                            "; `prolongctl data verify` names it)"));
  }
  return FromRocks(status, absl::StrCat("reading ", DocumentName(domain, id)));
}

// Token values: elements are token ids.
struct TokenElements {
  using Container = std::vector<uint32_t>;
  static constexpr const char* kNoun = "tokens";
  static int64_t Count(absl::string_view value) { return internal::EncodedTokenCount(value); }
  static void Copy(absl::string_view value, int64_t first, int64_t count, uint32_t* out) {
    internal::DecodeTokens(value, first, count, out);
  }
};

// Loss mask values: elements are bytes.
struct MaskElements {
  using Container = std::string;
  static constexpr const char* kNoun = "loss mask";
  static int64_t Count(absl::string_view value) { return static_cast<int64_t>(value.size()); }
  static void Copy(absl::string_view value, int64_t first, int64_t count, char* out) {
    std::memcpy(out, value.data() + first, count);
  }
};

// Elements [offset, offset + length) of a document's value in `family`, whole or chunked
// (internal/value_layout.h); a chunked one reads only the chunks the range overlaps.
template <typename Elements>
absl::StatusOr<typename Elements::Container> ReadRange(
    rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, absl::string_view dir,
    absl::string_view domain, const DocumentId& id, int64_t offset, int64_t length) {
  const std::string key = internal::DocumentKey(domain, id);
  rocksdb::PinnableSlice value;
  rocksdb::Status status = db.Get(rocksdb::ReadOptions(), family, key, &value);
  if (status.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat(DocumentName(domain, id), ": not found"));
  }
  if (!status.ok()) return ReadError(status, dir, domain, id);
  const absl::string_view whole(value.data(), value.size());
  internal::ChunkedHead head;
  if (internal::IsChunkedHead(whole)) {
    if (!internal::ParseHead(whole, &head)) {
      return absl::DataLossError(
          absl::StrCat(DocumentName(domain, id), ": corrupt ", Elements::kNoun, " chunk head"));
    }
  } else {
    head.length = Elements::Count(whole);
    if (head.length < 0) {
      return absl::DataLossError(
          absl::StrCat(DocumentName(domain, id), ": corrupt ", Elements::kNoun));
    }
  }
  if (length < 0) length = head.length - offset;
  if (offset < 0 || length < 0 || offset > head.length || length > head.length - offset) {
    return absl::OutOfRangeError(absl::StrCat(Elements::kNoun, " [", offset, ", ", offset + length,
                                              ") of a ", head.length, "-token document"));
  }
  typename Elements::Container out(length, 0);
  if (head.chunk_tokens == 0) {  // One whole value.
    Elements::Copy(whole, offset, length, out.data());
    return out;
  }
  const int64_t end = offset + length;
  for (int64_t index = offset / head.chunk_tokens; index * head.chunk_tokens < end; ++index) {
    value.Reset();
    status = db.Get(rocksdb::ReadOptions(), family, internal::ChunkKey(key, index), &value);
    const auto chunk_lost = [&](absl::string_view what) {
      return absl::DataLossError(absl::StrCat(DocumentName(domain, id), ": ", Elements::kNoun,
                                              " chunk ", index, " of ", head.chunks(), " is ",
                                              what));
    };
    if (status.IsNotFound()) return chunk_lost("missing");
    if (!status.ok()) return ReadError(status, dir, domain, id);
    const absl::string_view chunk(value.data(), value.size());
    if (Elements::Count(chunk) != head.ChunkLength(index)) return chunk_lost("corrupt");
    const int64_t chunk_begin = index * head.chunk_tokens;
    const int64_t from = std::max(offset, chunk_begin);
    const int64_t to = std::min(end, chunk_begin + head.chunk_tokens);
    Elements::Copy(chunk, from - chunk_begin, to - from, out.data() + (from - offset));
  }
  return out;
}

}  // namespace

DocumentId ComputeDocumentId(absl::Span<const uint32_t> tokens, absl::string_view loss_mask) {
  Sha256 hasher;
  // Little-endian on every machine we run on (x86-64, aarch64): ids are portable.
  hasher.Update(tokens.data(), tokens.size() * sizeof(uint32_t));
  hasher.Update(loss_mask);
  return hasher.Finish().substr(0, kIdBytes);
}

std::string HexId(const DocumentId& id) { return absl::BytesToHexString(id); }

absl::StatusOr<std::unique_ptr<Shard>> Shard::Open(const std::string& dir, Mode mode,
                                                   const ShardOptions& options) {
  if (options.chunk_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk_tokens: must be 0 (no chunks) or positive, got ", options.chunk_tokens));
  }
  std::unique_ptr<Shard> shard(new Shard());
  shard->dir_ = dir;
  shard->read_only_ = mode == Mode::kReadOnly;
  shard->options_ = options;
  struct stat info;
  if (shard->read_only_ && stat((dir + "/CURRENT").c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(dir, ": no shard here"));
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  // Each table and blob file's CRC32C is recorded as it is written, so that VerifyFiles can
  // name a damaged blob file (a blob read only says that its record's CRC mismatched).
  db_options.file_checksum_gen_factory = rocksdb::GetFileChecksumGenCrc32cFactory();
  rocksdb::ColumnFamilyOptions small;  // The index: many small values, read in scans.
  small.OptimizeLevelStyleCompaction();
  small.compression = rocksdb::kZSTD;
  rocksdb::ColumnFamilyOptions blobs = small;  // Token data: large values out of the LSM tree.
  blobs.enable_blob_files = true;
  blobs.min_blob_size = 256;
  blobs.blob_compression_type = rocksdb::kZSTD;
  blobs.enable_blob_garbage_collection = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {kFamilyNames[kDefault], small},
      {kFamilyNames[kIndex], small},
      {kFamilyNames[kTokens], blobs},
      {kFamilyNames[kMasks], blobs},
  };
  rocksdb::DB* db = nullptr;
  const rocksdb::Status status =
      shard->read_only_
          ? rocksdb::DB::OpenForReadOnly(db_options, dir, families, &shard->handles_, &db)
          : rocksdb::DB::Open(db_options, dir, families, &shard->handles_, &db);
  if (!status.ok()) return FromRocks(status, dir);
  shard->db_.reset(db);
  return shard;
}

absl::Status Shard::VerifyFiles() const {
  // Each table block's checksum, then each file's own (blob files included).
  rocksdb::Status status = db_->VerifyChecksum(rocksdb::ReadOptions());
  if (status.ok()) status = db_->VerifyFileChecksums(rocksdb::ReadOptions());
  if (status.IsCorruption()) return absl::DataLossError(status.ToString());
  return FromRocks(status, "verifying the store's files");
}

Shard::~Shard() {
  if (db_ == nullptr) return;
  // A failed flush loses nothing: the data stays in the log, which the next open replays.
  if (!read_only_) db_->Flush(rocksdb::FlushOptions(), handles_).PermitUncheckedError();
  for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
}

absl::StatusOr<BatchResult> Shard::AddBatch(absl::Span<const Document> documents) {
  if (read_only_) return absl::FailedPreconditionError("shard is open read-only");
  for (const Document& document : documents) {
    if (!ValidDomain(document.domain)) {
      return absl::InvalidArgumentError(absl::StrCat(document.source, ": domain '", document.domain,
                                                     "' is not [a-z0-9_-]{1,63}"));
    }
    if (document.tokens.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(document.source, ": empty document"));
    }
    if (!document.loss_mask.empty() && document.loss_mask.size() != document.tokens.size()) {
      return absl::InvalidArgumentError(absl::StrCat(document.source, ": loss mask has ",
                                                     document.loss_mask.size(), " entries for ",
                                                     document.tokens.size(), " tokens"));
    }
    // 0 and 1 only, which also keeps a whole mask from starting with the chunked marker.
    const size_t bad = document.loss_mask.find_first_not_of(std::string("\0\1", 2));
    if (bad != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          document.source, ": loss mask entry ", bad, " is ",
          static_cast<int>(static_cast<uint8_t>(document.loss_mask[bad])), ", not 0 or 1"));
    }
  }
  BatchResult result;
  rocksdb::WriteBatch batch;
  absl::flat_hash_set<std::string> keys;
  for (const Document& document : documents) {
    const std::string key = internal::DocumentKey(
        document.domain, ComputeDocumentId(document.tokens, document.loss_mask));
    std::string existing;
    if (!keys.insert(key).second ||
        db_->Get(rocksdb::ReadOptions(), handles_[kIndex], key, &existing).ok()) {
      ++result.duplicates;
      continue;
    }
    std::string entry;
    internal::PutVarint(entry, document.tokens.size());
    entry += document.source;
    batch.Put(handles_[kIndex], key, entry);
    PutValues(document, key, batch);
    ++result.added;
    result.tokens_added += static_cast<int64_t>(document.tokens.size());
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  if (const rocksdb::Status status = db_->Write(options, &batch); !status.ok()) {
    return FromRocks(status, "writing a batch");
  }
  return result;
}

void Shard::PutValues(const Document& document, const std::string& key,
                      rocksdb::WriteBatch& batch) const {
  const absl::Span<const uint32_t> tokens(document.tokens);
  const absl::string_view mask(document.loss_mask);
  const int64_t length = static_cast<int64_t>(tokens.size());
  const int64_t chunk_tokens = options_.chunk_tokens;
  if (chunk_tokens == 0 || length <= chunk_tokens) {
    batch.Put(handles_[kTokens], key, internal::EncodeTokens(tokens));
    if (!mask.empty()) batch.Put(handles_[kMasks], key, ToSlice(mask));
    return;
  }
  const std::string head = internal::EncodeHead({length, chunk_tokens});
  batch.Put(handles_[kTokens], key, head);
  if (!mask.empty()) batch.Put(handles_[kMasks], key, head);
  for (int64_t index = 0; index * chunk_tokens < length; ++index) {
    const std::string chunk_key = internal::ChunkKey(key, index);
    batch.Put(handles_[kTokens], chunk_key,
              internal::EncodeTokens(tokens.subspan(index * chunk_tokens, chunk_tokens)));
    if (!mask.empty()) {
      batch.Put(handles_[kMasks], chunk_key,
                ToSlice(mask.substr(index * chunk_tokens, chunk_tokens)));
    }
  }
}

absl::Status Shard::ScanIndex(absl::string_view domain,
                              const std::function<void(const IndexEntry&)>& visit) const {
  const std::string prefix = domain.empty() ? "" : absl::StrCat(domain, absl::string_view("\0", 1));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kIndex]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    absl::string_view value(it->value().data(), it->value().size());
    const size_t separator = key.find('\0');
    uint64_t length = 0;
    if (separator == absl::string_view::npos || key.size() != separator + 1 + kIdBytes ||
        !internal::GetVarint(value, &length)) {
      return absl::DataLossError(absl::StrCat("malformed index entry ", absl::CHexEscape(key)));
    }
    visit(IndexEntry{std::string(key.substr(0, separator)), std::string(key.substr(separator + 1)),
                     static_cast<int64_t>(length), std::string(value)});
  }
  return FromRocks(it->status(), "scanning the index");
}

absl::StatusOr<std::vector<uint32_t>> Shard::ReadTokens(absl::string_view domain,
                                                        const DocumentId& id, int64_t offset,
                                                        int64_t length) const {
  return ReadRange<TokenElements>(*db_, handles_[kTokens], dir_, domain, id, offset, length);
}

absl::StatusOr<std::string> Shard::ReadLossMask(absl::string_view domain, const DocumentId& id,
                                                int64_t offset, int64_t length) const {
  absl::StatusOr<std::string> mask =
      ReadRange<MaskElements>(*db_, handles_[kMasks], dir_, domain, id, offset, length);
  if (absl::IsNotFound(mask.status())) return std::string();
  return mask;
}

}  // namespace prolong::store
