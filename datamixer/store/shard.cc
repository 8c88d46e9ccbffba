#include "datamixer/store/shard.h"

#include <sys/stat.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "rocksdb/db.h"
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

std::string Key(absl::string_view domain, const DocumentId& id) {
  return absl::StrCat(domain, absl::string_view("\0", 1), id);
}

void PutVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

bool GetVarint(absl::string_view& in, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    *value |= uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// Width byte, then each id little-endian in `width` bytes.
std::string EncodeTokens(absl::Span<const uint32_t> tokens) {
  const uint32_t max_id = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
  const int width = max_id < (1u << 16) ? 2 : max_id < (1u << 24) ? 3 : 4;
  std::string out(1 + tokens.size() * width, '\0');
  out[0] = static_cast<char>(width);
  char* p = out.data() + 1;
  for (uint32_t id : tokens) {
    for (int b = 0; b < width; ++b) *p++ = static_cast<char>(id >> (8 * b));
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

absl::StatusOr<std::unique_ptr<Shard>> Shard::Open(const std::string& dir, Mode mode) {
  std::unique_ptr<Shard> shard(new Shard());
  shard->read_only_ = mode == Mode::kReadOnly;
  struct stat info;
  if (shard->read_only_ && stat((dir + "/CURRENT").c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(dir, ": no shard here"));
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
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

Shard::~Shard() {
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
  }
  BatchResult result;
  rocksdb::WriteBatch batch;
  absl::flat_hash_set<std::string> keys;
  for (const Document& document : documents) {
    const std::string key =
        Key(document.domain, ComputeDocumentId(document.tokens, document.loss_mask));
    std::string existing;
    if (!keys.insert(key).second ||
        db_->Get(rocksdb::ReadOptions(), handles_[kIndex], key, &existing).ok()) {
      ++result.duplicates;
      continue;
    }
    std::string entry;
    PutVarint(entry, document.tokens.size());
    entry += document.source;
    batch.Put(handles_[kIndex], key, entry);
    batch.Put(handles_[kTokens], key, EncodeTokens(document.tokens));
    if (!document.loss_mask.empty()) batch.Put(handles_[kMasks], key, document.loss_mask);
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
        !GetVarint(value, &length)) {
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
  rocksdb::PinnableSlice value;
  const rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), handles_[kTokens], Key(domain, id), &value);
  if (status.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("document ", domain, "/", HexId(id), ": not found"));
  }
  if (!status.ok()) return FromRocks(status, "reading tokens");
  const int width = value.empty() ? 0 : static_cast<uint8_t>(value.data()[0]);
  if (width < 2 || width > 4 || (value.size() - 1) % width != 0) {
    return absl::DataLossError(absl::StrCat("document ", domain, "/", HexId(id), ": corrupt"));
  }
  const int64_t size = static_cast<int64_t>((value.size() - 1) / width);
  if (length < 0) length = size - offset;
  if (offset < 0 || length < 0 || offset + length > size) {
    return absl::OutOfRangeError(absl::StrCat("tokens [", offset, ", ", offset + length, ") of a ",
                                              size, "-token document"));
  }
  std::vector<uint32_t> tokens(length);
  const unsigned char* p =
      reinterpret_cast<const unsigned char*>(value.data()) + 1 + offset * width;
  for (int64_t i = 0; i < length; ++i, p += width) {
    uint32_t id_value = 0;
    for (int b = 0; b < width; ++b) id_value |= uint32_t{p[b]} << (8 * b);
    tokens[i] = id_value;
  }
  return tokens;
}

absl::StatusOr<std::string> Shard::ReadLossMask(absl::string_view domain,
                                                const DocumentId& id) const {
  std::string mask;
  const rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), handles_[kMasks], Key(domain, id), &mask);
  if (status.IsNotFound()) return std::string();
  if (!status.ok()) return FromRocks(status, "reading a loss mask");
  return mask;
}

}  // namespace prolong::store
