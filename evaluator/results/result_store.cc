#include "evaluator/results/result_store.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace prolong::evaluator::results {
namespace {

enum Family { kDefault = 0, kExamples = 1, kSummaries = 2, kEvaluations = 3 };
constexpr const char* kFamilyNames[] = {"default", "examples", "summaries", "evaluations"};

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  if (status.IsIOError() && absl::StrContains(status.ToString(), "lock")) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": in use by another process (", status.ToString(), ")"));
  }
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", status.ToString()));
}

void AppendBigEndian(std::string& out, int64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> shift) & 0xff));
  }
}

int64_t ReadBigEndian(absl::string_view bytes) {
  uint64_t value = 0;
  for (unsigned char c : bytes.substr(0, 8)) value = (value << 8) | c;
  return static_cast<int64_t>(value);
}

absl::Status CheckPart(absl::string_view name, absl::string_view part) {
  if (part.empty() || part.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("result key: ", name, " must be non-empty and hold no NUL byte"));
  }
  return absl::OkStatus();
}

// fingerprint '\0' task '\0' length '\0' config
absl::StatusOr<std::string> EncodeKey(const ResultKey& key) {
  RETURN_IF_ERROR(CheckPart("model_fingerprint", key.model_fingerprint));
  RETURN_IF_ERROR(CheckPart("task", key.task));
  RETURN_IF_ERROR(CheckPart("config_hash", key.config_hash));
  if (key.input_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("result key: input_length must be >= 0, got ", key.input_length));
  }
  std::string encoded = absl::StrCat(key.model_fingerprint, absl::string_view("\0", 1), key.task,
                                     absl::string_view("\0", 1));
  AppendBigEndian(encoded, key.input_length);
  absl::StrAppend(&encoded, absl::string_view("\0", 1), key.config_hash);
  return encoded;
}

// The inverse of EncodeKey for a summary key; nullopt if it is not one.
std::optional<ResultKey> DecodeKey(absl::string_view encoded) {
  ResultKey key;
  const size_t task_at = encoded.find('\0');
  if (task_at == absl::string_view::npos) return std::nullopt;
  const size_t length_at = encoded.find('\0', task_at + 1);
  if (length_at == absl::string_view::npos || encoded.size() < length_at + 1 + 8 + 1) {
    return std::nullopt;
  }
  key.model_fingerprint = std::string(encoded.substr(0, task_at));
  key.task = std::string(encoded.substr(task_at + 1, length_at - task_at - 1));
  key.input_length = ReadBigEndian(encoded.substr(length_at + 1, 8));
  key.config_hash = std::string(encoded.substr(length_at + 1 + 8 + 1));
  return key;
}

}  // namespace

bool ResultKey::operator==(const ResultKey& other) const {
  return model_fingerprint == other.model_fingerprint && task == other.task &&
         input_length == other.input_length && config_hash == other.config_hash;
}

absl::StatusOr<std::unique_ptr<ResultStore>> ResultStore::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("result store: the directory is empty");
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  rocksdb::ColumnFamilyOptions family;
  family.OptimizeLevelStyleCompaction();
  family.compression = rocksdb::kZSTD;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kFamilyNames) families.emplace_back(name, family);
  std::unique_ptr<ResultStore> store(new ResultStore());
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, families, &store->handles_, &db), dir));
  store->db_.reset(db);
  return store;
}

ResultStore::~ResultStore() {
  for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
}

namespace {

absl::Status Put(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, absl::string_view key,
                 absl::string_view value) {
  rocksdb::WriteOptions options;
  options.sync = true;  // a result is kept once it is reported
  return FromRocks(db.Put(options, family, rocksdb::Slice(key.data(), key.size()),
                          rocksdb::Slice(value.data(), value.size())),
                   "result store write");
}

absl::StatusOr<std::optional<std::string>> Get(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                                               absl::string_view key) {
  std::string value;
  const rocksdb::Status status =
      db.Get(rocksdb::ReadOptions(), family, rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return std::nullopt;
  RETURN_IF_ERROR(FromRocks(status, "result store read"));
  return value;
}

// Calls `visit` with each key (without `prefix`) and value under `prefix`.
absl::Status Scan(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, absl::string_view prefix,
                  const std::function<void(absl::string_view, absl::string_view)>& visit) {
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(rocksdb::ReadOptions(), family));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    const absl::string_view key(it->key().data(), it->key().size());
    if (!absl::StartsWith(key, prefix)) break;
    visit(key.substr(prefix.size()), absl::string_view(it->value().data(), it->value().size()));
  }
  return FromRocks(it->status(), "result store scan");
}

}  // namespace

absl::Status ResultStore::PutExample(const ResultKey& key, int64_t index,
                                     absl::string_view record) {
  if (index < 0) return absl::InvalidArgumentError(absl::StrCat("example index ", index, " < 0"));
  ASSIGN_OR_RETURN(std::string encoded, EncodeKey(key));
  encoded.push_back('\0');
  AppendBigEndian(encoded, index);
  return Put(*db_, handles_[kExamples], encoded, record);
}

absl::StatusOr<std::map<int64_t, std::string>> ResultStore::Examples(const ResultKey& key) const {
  ASSIGN_OR_RETURN(std::string prefix, EncodeKey(key));
  prefix.push_back('\0');
  std::map<int64_t, std::string> examples;
  RETURN_IF_ERROR(
      Scan(*db_, handles_[kExamples], prefix, [&](absl::string_view rest, absl::string_view value) {
        if (rest.size() == 8) examples[ReadBigEndian(rest)] = std::string(value);
      }));
  return examples;
}

absl::Status ResultStore::PutSummary(const ResultKey& key, absl::string_view summary) {
  ASSIGN_OR_RETURN(const std::string encoded, EncodeKey(key));
  return Put(*db_, handles_[kSummaries], encoded, summary);
}

absl::StatusOr<std::optional<std::string>> ResultStore::Summary(const ResultKey& key) const {
  ASSIGN_OR_RETURN(const std::string encoded, EncodeKey(key));
  return Get(*db_, handles_[kSummaries], encoded);
}

absl::Status ResultStore::ScanSummaries(
    absl::string_view model_fingerprint,
    const std::function<void(const ResultKey&, absl::string_view)>& visit) const {
  RETURN_IF_ERROR(CheckPart("model_fingerprint", model_fingerprint));
  const std::string prefix = absl::StrCat(model_fingerprint, absl::string_view("\0", 1));
  return Scan(*db_, handles_[kSummaries], prefix,
              [&](absl::string_view rest, absl::string_view value) {
                const std::optional<ResultKey> key = DecodeKey(absl::StrCat(prefix, rest));
                if (key.has_value()) visit(*key, value);
              });
}

absl::Status ResultStore::PutEvaluation(absl::string_view id, absl::string_view record) {
  RETURN_IF_ERROR(CheckPart("evaluation id", id));
  return Put(*db_, handles_[kEvaluations], id, record);
}

absl::StatusOr<std::optional<std::string>> ResultStore::Evaluation(absl::string_view id) const {
  RETURN_IF_ERROR(CheckPart("evaluation id", id));
  return Get(*db_, handles_[kEvaluations], id);
}

absl::Status ResultStore::ScanEvaluations(
    const std::function<void(absl::string_view, absl::string_view)>& visit) const {
  return Scan(*db_, handles_[kEvaluations], "", visit);
}

}  // namespace prolong::evaluator::results
