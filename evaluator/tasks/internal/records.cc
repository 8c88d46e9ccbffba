#include "evaluator/tasks/internal/records.h"

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"

namespace prolong::evaluator::tasks::internal {
namespace {

constexpr size_t kMaxProblems = 20;

// Applies `strict` to a malformed record at `where`: the error when strict, else counted.
absl::Status Malformed(const absl::Status& status, const std::string& where, bool strict,
                       LoadReport& report) {
  const std::string message = absl::StrCat(where, ": ", status.message());
  if (strict) return absl::InvalidArgumentError(message);
  ++report.records_skipped;
  if (report.problems.size() < kMaxProblems) report.problems.push_back(message);
  return absl::OkStatus();
}

// One record through the visitor; INVALID_ARGUMENT is the record's fault, the rest the caller's.
absl::Status Visit(SourceRecord& record, bool strict, LoadReport& report,
                   const RecordVisitor& visit) {
  if (!record.json.is_object()) {
    return Malformed(absl::InvalidArgumentError("not a JSON object"), record.where, strict, report);
  }
  ++report.records_read;
  absl::Status status = visit(record);
  if (status.ok()) return status;
  if (status.code() != absl::StatusCode::kInvalidArgument) return status;
  --report.records_read;
  return Malformed(status, record.where, strict, report);
}

}  // namespace

absl::Status ReadRecords(const std::string& path, const ReadOptions& options, LoadReport& report,
                         const RecordVisitor& visit) {
  if (absl::EndsWith(path, ".json")) {
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) return text.status();
    Json document = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
    }
    // HELMET reads the records from the "data" field; a bare list is accepted too.
    Json* list = &document;
    if (document.is_object()) {
      auto it = document.find("data");
      if (it == document.end()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": no \"data\" list of records"));
      }
      list = &*it;
    }
    if (!list->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": \"data\" is not a list"));
    }
    for (size_t i = 0; i < list->size(); ++i) {
      SourceRecord record{std::move((*list)[i]), absl::StrCat(path, ": data[", i, "]"), -1};
      absl::Status status = Visit(record, options.strict, report, visit);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string line;
  int64_t offset = 0;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    const int64_t line_offset = offset;
    offset += static_cast<int64_t>(line.size()) + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = absl::StrCat(path, ":", number);
    Json record;
    try {
      record = Json::parse(line);
    } catch (const Json::exception& e) {  // parse_error, or out_of_range for 1e400
      absl::Status status =
          Malformed(absl::InvalidArgumentError(absl::StrCat("not valid JSON (", e.what(), ")")),
                    where, options.strict, report);
      if (!status.ok()) return status;
      continue;
    }
    SourceRecord source{std::move(record), where, line_offset};
    absl::Status status = Visit(source, options.strict, report, visit);
    if (!status.ok()) return status;
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SourceRecord>> ReadAllRecords(
    const std::string& path, bool strict, LoadReport& report,
    const std::function<absl::Status(const Json&)>& validate) {
  std::vector<SourceRecord> records;
  absl::Status status = ReadRecords(path, ReadOptions{strict}, report, [&](SourceRecord& record) {
    if (validate) {
      absl::Status valid = validate(record.json);
      if (!valid.ok()) return valid;
    }
    records.push_back(std::move(record));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return records;
}

absl::StatusOr<Json> ReadRecordAt(const std::string& path, int64_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  in.seekg(offset);
  std::string line;
  if (!std::getline(in, line)) {
    return absl::DataLossError(absl::StrCat(path, ": no record at byte ", offset));
  }
  Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) {
    return absl::DataLossError(
        absl::StrCat(path, ": the record at byte ", offset, " no longer parses"));
  }
  return record;
}

absl::Status AtRecord(const SourceRecord& record, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(record.where, ": ", status.message()));
}

absl::StatusOr<const Json*> GetField(const Json& record, absl::string_view field) {
  auto it = record.find(std::string(field));
  if (it == record.end()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", field, "' is missing"));
  }
  return &*it;
}

absl::StatusOr<std::string> GetString(const Json& record, absl::string_view field) {
  absl::StatusOr<const Json*> value = GetField(record, field);
  if (!value.ok()) return value.status();
  if (!(*value)->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", field, "' is not a string"));
  }
  return (*value)->get<std::string>();
}

absl::StatusOr<std::vector<std::string>> GetStringList(const Json& record,
                                                       absl::string_view field) {
  absl::StatusOr<const Json*> value = GetField(record, field);
  if (!value.ok()) return value.status();
  if (!(*value)->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", field, "' is not a list"));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < (*value)->size(); ++i) {
    const Json& item = (**value)[i];
    if (!item.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("field '", field, "'[", i, "] is not a string"));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

absl::StatusOr<int64_t> GetInt(const Json& record, absl::string_view field) {
  absl::StatusOr<const Json*> value = GetField(record, field);
  if (!value.ok()) return value.status();
  if (!(*value)->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", field, "' is not an integer"));
  }
  return (*value)->get<int64_t>();
}

std::string DataPath(const std::string& data_dir, const std::string& relative) {
  if (relative.empty() || relative[0] == '/' || data_dir.empty()) return relative;
  if (data_dir.back() == '/') return data_dir + relative;
  return absl::StrCat(data_dir, "/", relative);
}

}  // namespace prolong::evaluator::tasks::internal
