// The scheduler's durable state in RocksDB: every run (the Run message, whole), its events in
// order, and the request ids it was submitted under. A synced write is on disk before it
// returns, so a transition is there before the scheduler acts on it; concurrent writers share
// one sync (RocksDB commits them as a group). A run's record and the events that describe its
// change land together or not at all, and in the order written: an unsynced write (a step's
// metrics) may be lost in a machine crash, but only with everything written after it.
//
// Keys: "run/<id>" -> Run, "event/<id>/<sequence, 16 digits>" -> RunEvent,
// "request/<request id>" -> run id.
//
// Thread-safety: every method may be called from any thread.
#ifndef PROLONG_SCHEDULER_RUN_STORE_H_
#define PROLONG_SCHEDULER_RUN_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "prolong/v1/scheduler.pb.h"

namespace rocksdb {
class DB;
}

namespace prolong::scheduler {

class RunStore {
 public:
  // Creates the store if absent. FAILED_PRECONDITION when another process holds it.
  static absl::StatusOr<std::unique_ptr<RunStore>> Open(const std::string& dir);
  ~RunStore();

  enum class Durability { kSynced, kBuffered };
  // The run's record with `events` appended, and `request_id` (if not empty) mapped to the run.
  absl::Status Write(const v1::Run& run, const std::vector<v1::RunEvent>& events,
                     const std::string& request_id = "",
                     Durability durability = Durability::kSynced);
  // Several runs' records as Write writes one, in one write (one sync for all of them).
  struct Record {
    const v1::Run* run;
    const v1::RunEvent* event;
    std::string request_id;
  };
  absl::Status WriteAll(const std::vector<Record>& records);

  // Every run, in no particular order.
  absl::StatusOr<std::vector<v1::Run>> LoadRuns() const;
  // Request id -> the run it created.
  using Requests = absl::flat_hash_map<std::string, std::string>;
  // Every request id with the run it created.
  absl::StatusOr<Requests> LoadRequests() const;
  // The run's events with a sequence above `after`, at most `limit`, in order.
  absl::StatusOr<std::vector<v1::RunEvent>> Events(const std::string& run_id, int64_t after,
                                                   int limit) const;
  // The sequence of the run's last event; 0 without events.
  absl::StatusOr<int64_t> LastSequence(const std::string& run_id) const;

 private:
  explicit RunStore(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_RUN_STORE_H_
