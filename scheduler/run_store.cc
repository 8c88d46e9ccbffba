#include "scheduler/run_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace prolong::scheduler {
namespace {

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat("run store: ", what, ": ", status.ToString());
  if (status.IsIOError() && absl::StrContains(status.ToString(), "lock")) {
    return absl::FailedPreconditionError(
        absl::StrCat(message, " (is another scheduler using this state directory?)"));
  }
  if (status.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

constexpr char kRequestPrefix[] = "request/";

std::string RunKey(const std::string& run_id) { return absl::StrCat("run/", run_id); }
std::string EventPrefix(const std::string& run_id) { return absl::StrCat("event/", run_id, "/"); }
std::string EventKey(const std::string& run_id, int64_t sequence) {
  return absl::StrFormat("%s%016d", EventPrefix(run_id), sequence);
}

// A run's record and, if any, the request id that created it.
void AddRun(const v1::Run& run, const std::string& request_id, rocksdb::WriteBatch& batch) {
  batch.Put(RunKey(run.run_id()), run.SerializeAsString());
  if (!request_id.empty()) batch.Put(absl::StrCat(kRequestPrefix, request_id), run.run_id());
}

void AddEvent(const std::string& run_id, const v1::RunEvent& event, rocksdb::WriteBatch& batch) {
  batch.Put(EventKey(run_id, event.sequence()), event.SerializeAsString());
}

}  // namespace

RunStore::RunStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
RunStore::~RunStore() = default;

absl::StatusOr<std::unique_ptr<RunStore>> RunStore::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("run store: the directory is empty");
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, dir, &db), dir));
  return std::unique_ptr<RunStore>(new RunStore(std::unique_ptr<rocksdb::DB>(db)));
}

absl::Status RunStore::Write(const v1::Run& run, const std::vector<v1::RunEvent>& events,
                             const std::string& request_id, Durability durability) {
  rocksdb::WriteBatch batch;
  AddRun(run, request_id, batch);
  for (const v1::RunEvent& event : events) AddEvent(run.run_id(), event, batch);
  rocksdb::WriteOptions options;
  options.sync = durability == Durability::kSynced;
  return FromRocks(db_->Write(options, &batch), "write");
}

absl::Status RunStore::WriteAll(const std::vector<Record>& records) {
  rocksdb::WriteBatch batch;
  for (const Record& record : records) {
    AddRun(*record.run, record.request_id, batch);
    AddEvent(record.run->run_id(), *record.event, batch);
  }
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocks(db_->Write(options, &batch), "write");
}

absl::StatusOr<std::vector<v1::Run>> RunStore::LoadRuns() const {
  std::vector<v1::Run> runs;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("run/"); it->Valid() && it->key().starts_with("run/"); it->Next()) {
    v1::Run& run = runs.emplace_back();
    if (!run.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("run store: the record ", it->key().ToString(), " does not parse"));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  return runs;
}

absl::StatusOr<RunStore::Requests> RunStore::LoadRequests() const {
  Requests requests;
  const rocksdb::Slice prefix(kRequestPrefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    requests.emplace(it->key().ToString().substr(prefix.size()), it->value().ToString());
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  return requests;
}

absl::StatusOr<std::vector<v1::RunEvent>> RunStore::Events(const std::string& run_id, int64_t after,
                                                           int limit) const {
  std::vector<v1::RunEvent> events;
  const std::string prefix = EventPrefix(run_id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(EventKey(run_id, after + 1));
       it->Valid() && it->key().starts_with(prefix) && static_cast<int>(events.size()) < limit;
       it->Next()) {
    v1::RunEvent& event = events.emplace_back();
    if (!event.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(
          absl::StrCat("run store: the event ", it->key().ToString(), " does not parse"));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  return events;
}

absl::StatusOr<int64_t> RunStore::LastSequence(const std::string& run_id) const {
  const std::string prefix = EventPrefix(run_id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  // The first key past the run's events, then one back.
  it->SeekForPrev(EventKey(run_id, 9999999999999999));
  RETURN_IF_ERROR(FromRocks(it->status(), "scan"));
  if (!it->Valid() || !it->key().starts_with(prefix)) return 0;
  int64_t sequence = 0;
  if (!absl::SimpleAtoi(it->key().ToString().substr(prefix.size()), &sequence)) {
    return absl::DataLossError(absl::StrCat("run store: bad event key ", it->key().ToString()));
  }
  return sequence;
}

}  // namespace prolong::scheduler
