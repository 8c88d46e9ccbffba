// The scheduler's runs: their records (persisted in the RunStore before anyone sees a change),
// their event logs, the waiting of watchers, and the workers of each run's current attempt
// (registrations and heartbeats, kept in memory: a restarted scheduler starts a new attempt).
//
// Every change goes through Update (a pending run's wait reason aside: SetPendingMessage), which
// persists the run and its new events in one write and only then makes them visible, so what a
// client was told survives a crash. The write happens outside the lock (one change of a run at
// a time; other runs and readers go on meanwhile), so concurrent submissions and changes share
// a sync. The newest events of each run are also kept in memory, where watchers read them.
//
// Thread-safety: every method may be called from any thread.
#ifndef PROLONG_SCHEDULER_RUNS_H_
#define PROLONG_SCHEDULER_RUNS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prolong/v1/scheduler.pb.h"
#include "scheduler/run_store.h"

namespace prolong::scheduler {

bool IsTerminal(v1::RunState state);

// Whether the run lists the checkpoint of `stage` at `step`.
bool HasCheckpoint(const v1::Run& run, const std::string& stage, int64_t step);

// A rank of the current attempt, as its heartbeats show it.
struct RankLiveness {
  bool registered = false;
  absl::Time last_seen;  // registration or last heartbeat
  int64_t step = 0;
  std::string worker_id;
  // Where the worker's /metrics is (from its registration).
  std::string metrics_address;
};

class Runs {
 public:
  // `max_unfinished`: Create refuses a new run (not a side job) while this many are unfinished;
  // 0: no cap.
  static absl::StatusOr<std::unique_ptr<Runs>> Open(const std::string& store_dir,
                                                    int max_unfinished = 0);

  // A new PENDING run for `spec`, or, for a request id seen before, the run it created
  // (`created` false). `side_job_of`: the run is a side job of another (Run.side_job_of), which
  // the cap on unfinished runs lets through (its run was let through). RESOURCE_EXHAUSTED at
  // the cap.
  absl::StatusOr<v1::Run> Create(const v1::RunSpec& spec, const std::string& request_id,
                                 bool* created, const v1::SideJobOf* side_job_of = nullptr);
  // Create for each of `submissions` (none a side job), their new runs written together: one
  // synced write for a burst of submissions instead of one each. Each submission's `run` and
  // `created` are Create's result for it.
  struct Submission {
    const v1::RunSpec* spec = nullptr;
    std::string request_id;
    absl::StatusOr<v1::Run> run;
    bool created = false;
  };
  void CreateMany(std::vector<Submission>& submissions);
  absl::StatusOr<v1::Run> Get(const std::string& run_id) const;
  // The run's state alone, without a copy of the run.
  absl::StatusOr<v1::RunState> StateOf(const std::string& run_id) const;
  // Newest first.
  std::vector<v1::Run> List() const;
  // Calls `visit` with every run, under the runs' lock and without copying them: for a look at
  // every run that keeps few of them (the metrics). `visit` must not call Runs.
  void ForEach(const std::function<void(const v1::Run&)>& visit) const;

  // An event to append: its sequence and time are filled in by Update.
  using Change = std::function<absl::Status(v1::Run& run, std::vector<v1::RunEvent>& events)>;
  // Applies `change` to a copy of the run; if it returns OK, persists the copy with the events
  // it added and makes both visible. The run as it now is. kBuffered (for a step's metrics, not
  // for a transition): not synced before it is shown, so a machine crash may lose it (and only
  // with what came after it).
  absl::StatusOr<v1::Run> Update(const std::string& run_id, const Change& change,
                                 RunStore::Durability durability = RunStore::Durability::kSynced);
  // What `run get` says a PENDING run waits for (its message), in memory only: not a
  // transition, and a restarted scheduler finds out again. Nothing for a run no longer pending.
  absl::Status SetPendingMessage(const std::string& run_id, const std::string& message);
  // Records each of `checkpoints` the run does not list yet, with its event: a retried report,
  // or a checkpoint both reported and found in its directory, is recorded once. `added`: those
  // recorded now.
  absl::StatusOr<v1::Run> AddCheckpoints(const std::string& run_id,
                                         const std::vector<v1::Checkpoint>& checkpoints,
                                         std::vector<v1::Checkpoint>* added);
  // Moves the run to `to` with a StateChanged event saying `message`, plus `change` if given.
  absl::StatusOr<v1::Run> Transition(const std::string& run_id, v1::RunState to,
                                     const std::string& message, const Change& change = nullptr);

  // The run's events after `after`, waiting up to `timeout` for one when there are none yet.
  // `ended` tells whether the run has ended and every event was returned.
  absl::StatusOr<std::vector<v1::RunEvent>> WaitForEvents(const std::string& run_id, int64_t after,
                                                          absl::Duration timeout,
                                                          bool* ended) const;

  // Workers. The current attempt's ranks start unregistered when the attempt changes.
  absl::StatusOr<v1::WorkerAssignment> RegisterWorker(const v1::RegisterWorkerRequest& request,
                                                      const std::string& datamixer_address,
                                                      absl::Duration heartbeat_interval);
  // What the worker should do. NOT_FOUND for an unknown worker id.
  absl::StatusOr<v1::WorkerAction> Heartbeat(const std::string& worker_id, int64_t step);
  // The run and attempt of a registered worker id, or FAILED_PRECONDITION for one of an attempt
  // that is over.
  absl::StatusOr<std::string> RunOfWorker(const std::string& worker_id) const;
  // The current attempt's ranks (world size of the running stage).
  std::vector<RankLiveness> Liveness(const std::string& run_id) const;

 private:
  struct Entry {
    v1::Run run;
    int64_t last_sequence = 0;
    // The newest events (the last at last_sequence), at most kRecentEvents.
    std::deque<v1::RunEvent> recent;
    // A change of the run is being written: the next one waits for it.
    bool writing = false;
    int64_t liveness_attempt = 0;
    std::vector<RankLiveness> ranks;
  };
  Runs(std::unique_ptr<RunStore> store, int max_unfinished);
  Entry* Find(const std::string& run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Entry* Find(const std::string& run_id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Create's steps. The run the request id created, if any.
  absl::StatusOr<const Entry*> RequestedBefore(const std::string& request_id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED at the cap on unfinished runs.
  absl::Status RoomForARun() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A new run id, held with the request id until Settle.
  std::string Reserve(const std::string& name, const std::string& request_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the hold; a run that was written is shown, with its first event.
  void Settle(const v1::Run& run, v1::RunEvent event, const std::string& request_id, bool written)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until no change of the entry's run is being written.
  void AwaitIdle(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(Entry& entry, v1::Run run, std::vector<v1::RunEvent> events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<RunStore> store_;
  const int max_unfinished_;
  mutable absl::Mutex mu_;
  // Entries are never removed, and a node map does not move them: pointers to them stay valid.
  absl::node_hash_map<std::string, Entry> runs_ ABSL_GUARDED_BY(mu_);
  // Each request id with the run it created, as the store has it (loaded by Open, so that a
  // retried submission is answered without a read of the store under the lock).
  RunStore::Requests run_of_request_ ABSL_GUARDED_BY(mu_);
  // Runs not ended, side jobs aside (what max_unfinished_ caps).
  int64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  // Run ids drawn and request ids taken by submissions being written.
  absl::flat_hash_set<std::string> creating_runs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> creating_requests_ ABSL_GUARDED_BY(mu_);
};

// "run-name-1a2b3c" ids; worker ids "<run id>/<attempt>/<rank>".
std::string WorkerId(const std::string& run_id, int64_t attempt, int rank);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_RUNS_H_
