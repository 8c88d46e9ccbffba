// The evaluator's results in RocksDB: every scored example, the summary of each task at each
// input length, and the service's evaluation records. An evaluation writes each example as it
// is scored, so one that was interrupted resumes at the next unscored example; results are
// keyed by what decides them, so a changed prompt, dataset or generation setting is a new key,
// never a stale hit.
//
// Layout (column families):
//   "examples"     fingerprint '\0' task '\0' length '\0' config '\0' index -> example record
//   "summaries"    fingerprint '\0' task '\0' length '\0' config                -> summary
//   "evaluations"  id -> an evaluation record (the service's)
// length and index are 8-byte big-endian, so keys sort by them. Records are opaque bytes to the
// store (JSON or serialized protos, the callers say). Every write is synced.
//
// Thread-safety: safe for concurrent use; one process opens a directory at a time.
#ifndef PROLONG_EVALUATOR_RESULTS_RESULT_STORE_H_
#define PROLONG_EVALUATOR_RESULTS_RESULT_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace prolong::evaluator::results {

// What one (task, input length) result is a result of.
struct ResultKey {
  std::string model_fingerprint;  // checkpoint::ModelFingerprint
  std::string task;               // e.g. "json_kv"
  int64_t input_length = 0;
  // A hash of everything else that decides the outputs: data, prompts, shots, samples,
  // generation settings, tokenizer.
  std::string config_hash;

  bool operator==(const ResultKey& other) const;
};

class ResultStore {
 public:
  // Creates the store if absent. FAILED_PRECONDITION if another process holds it or it cannot
  // be read; INVALID_ARGUMENT for an empty path.
  static absl::StatusOr<std::unique_ptr<ResultStore>> Open(const std::string& dir);
  ~ResultStore();

  // INVALID_ARGUMENT for a key part that is empty or holds '\0', or a negative length or index.
  absl::Status PutExample(const ResultKey& key, int64_t index, absl::string_view record);
  // Every example stored under `key`, by index.
  absl::StatusOr<std::map<int64_t, std::string>> Examples(const ResultKey& key) const;

  absl::Status PutSummary(const ResultKey& key, absl::string_view summary);
  // nullopt if none is stored.
  absl::StatusOr<std::optional<std::string>> Summary(const ResultKey& key) const;
  // Every summary of a model (every task, length and config), in key order.
  absl::Status ScanSummaries(
      absl::string_view model_fingerprint,
      const std::function<void(const ResultKey& key, absl::string_view summary)>& visit) const;

  absl::Status PutEvaluation(absl::string_view id, absl::string_view record);
  absl::StatusOr<std::optional<std::string>> Evaluation(absl::string_view id) const;
  absl::Status ScanEvaluations(
      const std::function<void(absl::string_view id, absl::string_view record)>& visit) const;

 private:
  ResultStore() = default;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, examples, summaries, evaluations
};

}  // namespace prolong::evaluator::results

#endif  // PROLONG_EVALUATOR_RESULTS_RESULT_STORE_H_
