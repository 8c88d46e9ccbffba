// Reading dataset records the way HELMET's loaders receive them: a .jsonl file (one JSON object
// per line, what `load_dataset("json", data_files=path)` reads) or a .json file whose "data"
// field is the list of records (`load_dataset("json", data_files=path, field="data")`).
//
// A record that does not parse, or that its task rejects, is named by file and line (or
// "data[i]" for .json) and skipped and counted, or stops the load when strict.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_RECORDS_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_RECORDS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/tasks/task_data.h"
#include "nlohmann/json.hpp"

namespace prolong::evaluator::tasks::internal {

using Json = nlohmann::ordered_json;

// A parsed record and where it came from.
struct SourceRecord {
  Json json;
  std::string where;    // "PATH:LINE" or "PATH: data[i]".
  int64_t offset = -1;  // The line's byte offset in a .jsonl file (for ReadRecordAt); -1 else.
};

// Called with each parsed record (it may move the JSON out). INVALID_ARGUMENT means "this record
// is malformed" (skipped or fatal by `strict`, with the location prefixed); any other error
// stops the read as is.
using RecordVisitor = std::function<absl::Status(SourceRecord& record)>;

struct ReadOptions {
  bool strict = false;
};

// NOT_FOUND "PATH: cannot open" for a missing file. With strict, INVALID_ARGUMENT
// "PATH:LINE: ..." for the first malformed record; otherwise those are counted in `report`.
absl::Status ReadRecords(const std::string& path, const ReadOptions& options, LoadReport& report,
                         const RecordVisitor& visit);

// Every record of `path` that `validate` (optional) accepts, in file order.
absl::StatusOr<std::vector<SourceRecord>> ReadAllRecords(
    const std::string& path, bool strict, LoadReport& report,
    const std::function<absl::Status(const Json&)>& validate = nullptr);

// The record on the .jsonl line that starts at `offset`.
absl::StatusOr<Json> ReadRecordAt(const std::string& path, int64_t offset);

// `status` with the record's location in front (INVALID_ARGUMENT stays INVALID_ARGUMENT).
absl::Status AtRecord(const SourceRecord& record, const absl::Status& status);

// Field accessors that say which field is wrong: INVALID_ARGUMENT "field 'x': ...".
absl::StatusOr<std::string> GetString(const Json& record, absl::string_view field);
absl::StatusOr<std::vector<std::string>> GetStringList(const Json& record, absl::string_view field);
absl::StatusOr<int64_t> GetInt(const Json& record, absl::string_view field);
absl::StatusOr<const Json*> GetField(const Json& record, absl::string_view field);

// `relative` under `data_dir` unless it is absolute.
std::string DataPath(const std::string& data_dir, const std::string& relative);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_RECORDS_H_
