#include "scheduler/runs.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "scheduler/run_spec_check.h"

namespace prolong::scheduler {
namespace {

// Events of a run kept in memory for its watchers; older ones are read from the store.
constexpr size_t kRecentEvents = 1024;

google::protobuf::Timestamp Now() {
  const int64_t micros = absl::ToUnixMicros(absl::Now());
  google::protobuf::Timestamp time;
  time.set_seconds(micros / 1000000);
  time.set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  return time;
}

int64_t Micros(const google::protobuf::Timestamp& time) {
  return time.seconds() * 1000000 + time.nanos() / 1000;
}

std::string NewRunId(const std::string& name) {
  static std::mt19937_64 random(std::random_device{}());
  return absl::StrFormat("%s-%06x", name, random() & 0xffffff);
}

// A new run's record and first event; the run id is set.
void NewPendingRun(const v1::RunSpec& spec, v1::Run& run, v1::RunEvent& event) {
  *run.mutable_spec() = spec;
  run.set_state(v1::RUN_STATE_PENDING);
  *run.mutable_create_time() = Now();
  event.set_sequence(1);
  *event.mutable_time() = run.create_time();
  event.mutable_state_changed()->set_to(v1::RUN_STATE_PENDING);
  event.mutable_state_changed()->set_message("submitted");
}

int WorldOf(const v1::Run& run) {
  const Layout layout = StageLayoutOf(run.spec(), run.stage_index());
  return layout.dp * layout.cp;
}

struct ParsedWorkerId {
  std::string run_id;
  int64_t attempt = 0;
  int rank = 0;
};

absl::StatusOr<ParsedWorkerId> ParseWorkerId(const std::string& worker_id) {
  const std::vector<std::string> parts = absl::StrSplit(worker_id, '/');
  ParsedWorkerId parsed;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &parsed.attempt) ||
      !absl::SimpleAtoi(parts[2], &parsed.rank)) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_id: \"", worker_id, "\" is not one the scheduler assigned"));
  }
  parsed.run_id = parts[0];
  return parsed;
}

// Whether the run counts against the cap on unfinished runs (an entry not yet published has no
// run id).
bool CountsAsUnfinished(const v1::Run& run) {
  return !run.run_id().empty() && !IsTerminal(run.state()) && !run.has_side_job_of();
}

}  // namespace

bool IsTerminal(v1::RunState state) {
  return state == v1::RUN_STATE_SUCCEEDED || state == v1::RUN_STATE_FAILED ||
         state == v1::RUN_STATE_CANCELLED;
}

bool HasCheckpoint(const v1::Run& run, const std::string& stage, int64_t step) {
  return std::any_of(
      run.checkpoints().begin(), run.checkpoints().end(),
      [&](const v1::Checkpoint& c) { return c.stage() == stage && c.step() == step; });
}

std::string WorkerId(const std::string& run_id, int64_t attempt, int rank) {
  return absl::StrCat(run_id, "/", attempt, "/", rank);
}

Runs::Runs(std::unique_ptr<RunStore> store, int max_unfinished)
    : store_(std::move(store)), max_unfinished_(max_unfinished) {}

absl::StatusOr<std::unique_ptr<Runs>> Runs::Open(const std::string& store_dir, int max_unfinished) {
  ASSIGN_OR_RETURN(std::unique_ptr<RunStore> store, RunStore::Open(store_dir));
  ASSIGN_OR_RETURN(std::vector<v1::Run> loaded, store->LoadRuns());
  ASSIGN_OR_RETURN(RunStore::Requests requests, store->LoadRequests());
  std::unique_ptr<Runs> runs(new Runs(std::move(store), max_unfinished));
  absl::MutexLock lock(&runs->mu_);
  runs->run_of_request_ = std::move(requests);
  for (v1::Run& run : loaded) {
    Entry& entry = runs->runs_[run.run_id()];
    ASSIGN_OR_RETURN(entry.last_sequence, runs->store_->LastSequence(run.run_id()));
    runs->unfinished_ += CountsAsUnfinished(run);
    entry.run = std::move(run);
  }
  return runs;
}

Runs::Entry* Runs::Find(const std::string& run_id) {
  auto found = runs_.find(run_id);
  return found == runs_.end() ? nullptr : &found->second;
}

const Runs::Entry* Runs::Find(const std::string& run_id) const {
  auto found = runs_.find(run_id);
  return found == runs_.end() ? nullptr : &found->second;
}

void Runs::AwaitIdle(Entry& entry) {
  auto idle = [&entry] { return !entry.writing; };
  mu_.Await(absl::Condition(&idle));
}

void Runs::Publish(Entry& entry, v1::Run run, std::vector<v1::RunEvent> events) {
  unfinished_ += CountsAsUnfinished(run) - CountsAsUnfinished(entry.run);
  entry.run = std::move(run);
  for (v1::RunEvent& event : events) {
    entry.last_sequence = event.sequence();
    entry.recent.push_back(std::move(event));
  }
  while (entry.recent.size() > kRecentEvents) entry.recent.pop_front();
}

absl::StatusOr<const Runs::Entry*> Runs::RequestedBefore(const std::string& request_id) const {
  auto existing = run_of_request_.find(request_id);
  if (existing == run_of_request_.end()) return nullptr;
  const Entry* entry = Find(existing->second);
  if (entry == nullptr) {
    return absl::DataLossError(absl::StrCat("request ", request_id, " names run ", existing->second,
                                            ", which the store does not hold"));
  }
  return entry;
}

absl::Status Runs::RoomForARun() const {
  // Each unfinished run holds a driver and, once running, a gang.
  if (max_unfinished_ > 0 &&
      unfinished_ + static_cast<int64_t>(creating_runs_.size()) >= max_unfinished_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("already ", max_unfinished_,
                     " unfinished runs (--max-unfinished-runs), the most this scheduler "
                     "holds; retry once some have ended"));
  }
  return absl::OkStatus();
}

std::string Runs::Reserve(const std::string& name, const std::string& request_id) {
  if (!request_id.empty()) creating_requests_.insert(request_id);
  std::string run_id;
  do {
    run_id = NewRunId(name);
  } while (runs_.contains(run_id) || creating_runs_.contains(run_id));
  creating_runs_.insert(run_id);
  return run_id;
}

void Runs::Settle(const v1::Run& run, v1::RunEvent event, const std::string& request_id,
                  bool written) {
  creating_runs_.erase(run.run_id());
  creating_requests_.erase(request_id);
  if (!written) return;
  if (!request_id.empty()) run_of_request_.emplace(request_id, run.run_id());
  Publish(runs_[run.run_id()], run, {std::move(event)});
}

absl::StatusOr<v1::Run> Runs::Create(const v1::RunSpec& spec, const std::string& request_id,
                                     bool* created, const v1::SideJobOf* side_job_of) {
  *created = false;
  v1::Run run;
  v1::RunEvent event;
  {
    absl::MutexLock lock(&mu_);
    if (!request_id.empty()) {
      // A retry of a submission still being written waits for it, then gets its run.
      auto settled = [this, &request_id] { return !creating_requests_.contains(request_id); };
      mu_.Await(absl::Condition(&settled));
      ASSIGN_OR_RETURN(const Entry* existing, RequestedBefore(request_id));
      if (existing != nullptr) return existing->run;
    }
    if (side_job_of == nullptr) RETURN_IF_ERROR(RoomForARun());
    run.set_run_id(Reserve(spec.name(), request_id));
  }
  if (side_job_of != nullptr) *run.mutable_side_job_of() = *side_job_of;
  NewPendingRun(spec, run, event);
  const absl::Status written = store_->Write(run, {event}, request_id);

  absl::MutexLock lock(&mu_);
  Settle(run, std::move(event), request_id, written.ok());
  RETURN_IF_ERROR(written);
  *created = true;
  return run;
}

void Runs::CreateMany(std::vector<Submission>& submissions) {
  // A submission whose request id is being written (by another call, or by one before it
  // here) waits for that in Create, once these are written.
  std::vector<Submission*> fresh, later;
  std::vector<v1::Run> runs;
  {
    absl::MutexLock lock(&mu_);
    for (Submission& submission : submissions) {
      if (!submission.request_id.empty()) {
        if (creating_requests_.contains(submission.request_id)) {
          later.push_back(&submission);
          continue;
        }
        const absl::StatusOr<const Entry*> existing = RequestedBefore(submission.request_id);
        if (!existing.ok()) {
          submission.run = existing.status();
          continue;
        }
        if (*existing != nullptr) {
          submission.run = (*existing)->run;
          continue;
        }
      }
      if (absl::Status room = RoomForARun(); !room.ok()) {
        submission.run = std::move(room);
        continue;
      }
      fresh.push_back(&submission);
      runs.emplace_back().set_run_id(Reserve(submission.spec->name(), submission.request_id));
    }
  }
  std::vector<v1::RunEvent> events(runs.size());
  std::vector<RunStore::Record> records;
  for (size_t k = 0; k < runs.size(); ++k) {
    NewPendingRun(*fresh[k]->spec, runs[k], events[k]);
    records.push_back({&runs[k], &events[k], fresh[k]->request_id});
  }
  const absl::Status written = records.empty() ? absl::OkStatus() : store_->WriteAll(records);
  {
    absl::MutexLock lock(&mu_);
    for (size_t k = 0; k < runs.size(); ++k) {
      Settle(runs[k], std::move(events[k]), fresh[k]->request_id, written.ok());
      fresh[k]->created = written.ok();
      if (written.ok()) {
        fresh[k]->run = std::move(runs[k]);
      } else {
        fresh[k]->run = written;
      }
    }
  }
  for (Submission* submission : later) {
    submission->run = Create(*submission->spec, submission->request_id, &submission->created);
  }
}

absl::StatusOr<v1::Run> Runs::Get(const std::string& run_id) const {
  absl::ReaderMutexLock lock(&mu_);
  const Entry* entry = Find(run_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("run_id: no run ", run_id));
  return entry->run;
}

absl::StatusOr<v1::RunState> Runs::StateOf(const std::string& run_id) const {
  absl::ReaderMutexLock lock(&mu_);
  const Entry* entry = Find(run_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("run_id: no run ", run_id));
  return entry->run.state();
}

std::vector<v1::Run> Runs::List() const {
  std::vector<v1::Run> runs;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, entry] : runs_) runs.push_back(entry.run);
  }
  std::sort(runs.begin(), runs.end(), [](const v1::Run& a, const v1::Run& b) {
    const int64_t ta = Micros(a.create_time()), tb = Micros(b.create_time());
    return ta != tb ? ta > tb : a.run_id() < b.run_id();
  });
  return runs;
}

void Runs::ForEach(const std::function<void(const v1::Run&)>& visit) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [id, entry] : runs_) visit(entry.run);
}

absl::StatusOr<v1::Run> Runs::Update(const std::string& run_id, const Change& change,
                                     RunStore::Durability durability) {
  Entry* entry = nullptr;
  v1::Run run;
  std::vector<v1::RunEvent> events;
  {
    absl::MutexLock lock(&mu_);
    entry = Find(run_id);
    if (entry == nullptr) return absl::NotFoundError(absl::StrCat("run_id: no run ", run_id));
    AwaitIdle(*entry);
    run = entry->run;
    RETURN_IF_ERROR(change(run, events));
    int64_t sequence = entry->last_sequence;
    for (v1::RunEvent& event : events) {
      event.set_sequence(++sequence);
      if (!event.has_time()) *event.mutable_time() = Now();
    }
    entry->writing = true;
  }
  const absl::Status written = store_->Write(run, events, "", durability);

  absl::MutexLock lock(&mu_);
  entry->writing = false;
  RETURN_IF_ERROR(written);
  Publish(*entry, run, std::move(events));
  return run;
}

absl::Status Runs::SetPendingMessage(const std::string& run_id, const std::string& message) {
  absl::MutexLock lock(&mu_);
  Entry* entry = Find(run_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("run_id: no run ", run_id));
  AwaitIdle(*entry);
  if (entry->run.state() == v1::RUN_STATE_PENDING) entry->run.set_message(message);
  return absl::OkStatus();
}

absl::StatusOr<v1::Run> Runs::AddCheckpoints(const std::string& run_id,
                                             const std::vector<v1::Checkpoint>& checkpoints,
                                             std::vector<v1::Checkpoint>* added) {
  added->clear();
  return Update(run_id, [&](v1::Run& run, std::vector<v1::RunEvent>& events) {
    for (const v1::Checkpoint& checkpoint : checkpoints) {
      if (HasCheckpoint(run, checkpoint.stage(), checkpoint.step())) continue;
      *run.add_checkpoints() = checkpoint;
      *events.emplace_back().mutable_checkpoint() = checkpoint;
      added->push_back(checkpoint);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::Run> Runs::Transition(const std::string& run_id, v1::RunState to,
                                         const std::string& message, const Change& change) {
  return Update(run_id, [&](v1::Run& run, std::vector<v1::RunEvent>& events) -> absl::Status {
    if (IsTerminal(run.state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", run.run_id(), " has ended (", v1::RunState_Name(run.state()), ")"));
    }
    v1::StateChanged& changed = *events.emplace_back().mutable_state_changed();
    changed.set_from(run.state());
    changed.set_to(to);
    changed.set_message(message);
    run.set_state(to);
    run.set_message(message);
    if (IsTerminal(to)) *run.mutable_end_time() = Now();
    if (to == v1::RUN_STATE_RUNNING && !run.has_start_time()) *run.mutable_start_time() = Now();
    return change ? change(run, events) : absl::OkStatus();
  });
}

absl::StatusOr<std::vector<v1::RunEvent>> Runs::WaitForEvents(const std::string& run_id,
                                                              int64_t after, absl::Duration timeout,
                                                              bool* ended) const {
  constexpr int kBatch = 1000;
  int64_t last_sequence = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    const Entry* entry = Find(run_id);
    if (entry == nullptr) return absl::NotFoundError(absl::StrCat("run_id: no run ", run_id));
    auto ready = [entry, after] {
      return entry->last_sequence > after || IsTerminal(entry->run.state());
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    *ended = IsTerminal(entry->run.state());
    last_sequence = entry->last_sequence;
    if (last_sequence <= after) return std::vector<v1::RunEvent>();
    if (!entry->recent.empty() && entry->recent.front().sequence() <= after + 1) {
      // All in memory: the usual case of a watcher that keeps up.
      auto first = entry->recent.end() - (last_sequence - after);
      std::vector<v1::RunEvent> events(first,
                                       first + std::min<int64_t>(kBatch, last_sequence - after));
      if (events.back().sequence() < last_sequence) *ended = false;
      return events;
    }
  }
  // Older than memory holds: from the store, without the lock, up to what has been shown.
  ASSIGN_OR_RETURN(std::vector<v1::RunEvent> events, store_->Events(run_id, after, kBatch));
  while (!events.empty() && events.back().sequence() > last_sequence) events.pop_back();
  if (events.empty() || events.back().sequence() < last_sequence) *ended = false;
  return events;
}

absl::StatusOr<v1::WorkerAssignment> Runs::RegisterWorker(const v1::RegisterWorkerRequest& request,
                                                          const std::string& datamixer_address,
                                                          absl::Duration heartbeat_interval) {
  absl::MutexLock lock(&mu_);
  Entry* entry = Find(request.run_id());
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("run_id: no run ", request.run_id()));
  }
  AwaitIdle(*entry);  // the rendezvous address below is written over the newest record
  const v1::Run& run = entry->run;
  if (request.attempt() != run.attempt() || run.state() != v1::RUN_STATE_RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("attempt: ", request.attempt(), " is over; run ", run.run_id(),
                     " is at attempt ", run.attempt(), " (", v1::RunState_Name(run.state()), ")"));
  }
  const int world = WorldOf(run);
  if (request.rank() < 0 || request.rank() >= world) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank: ", request.rank(), " is not in [0, ", world, ")"));
  }
  if (entry->liveness_attempt != run.attempt()) {
    entry->liveness_attempt = run.attempt();
    entry->ranks.assign(world, RankLiveness());
  }
  if (request.rank() == 0) {
    if (request.rendezvous_address().empty() && world > 1) {
      return absl::InvalidArgumentError("rendezvous_address: rank 0 must say where its store is");
    }
    if (request.rendezvous_address() != run.rendezvous_address()) {
      v1::Run changed = run;
      changed.set_rendezvous_address(request.rendezvous_address());
      RETURN_IF_ERROR(store_->Write(changed, {}));
      entry->run = std::move(changed);
    }
  } else if (run.rendezvous_address().empty()) {
    return absl::UnavailableError(
        absl::StrCat("rank 0 of attempt ", run.attempt(), " has not registered yet"));
  }
  RankLiveness& rank = entry->ranks[request.rank()];
  rank.registered = true;
  rank.last_seen = absl::Now();
  rank.worker_id = WorkerId(run.run_id(), run.attempt(), request.rank());
  rank.metrics_address = request.metrics_address();

  const Layout layout = StageLayoutOf(run.spec(), run.stage_index());
  v1::WorkerAssignment assignment;
  assignment.set_worker_id(rank.worker_id);
  *assignment.mutable_spec() = run.spec();
  assignment.set_stage_index(run.stage_index());
  v1::RankSpec& rank_spec = *assignment.mutable_rank();
  rank_spec.set_dp_rank(request.rank() / layout.cp);
  rank_spec.set_dp_size(layout.dp);
  rank_spec.set_cp_rank(request.rank() % layout.cp);
  rank_spec.set_cp_size(layout.cp);
  rank_spec.set_micro_batch_sequences(layout.micro_batch_sequences);
  assignment.set_rendezvous_address(run.rendezvous_address());
  assignment.set_datamixer_address(run.spec().data().datamixer_address().empty()
                                       ? datamixer_address
                                       : run.spec().data().datamixer_address());
  if (run.stage_index() < run.stage_plans_size()) {
    assignment.set_plan_id(run.stage_plans(run.stage_index()).plan_id());
  }
  const std::string& stage = run.spec().stages(run.stage_index()).name();
  for (const v1::Checkpoint& checkpoint : run.checkpoints()) {
    if (checkpoint.stage() == stage &&
        (!assignment.has_resume_from() || checkpoint.step() > assignment.resume_from().step())) {
      *assignment.mutable_resume_from() = checkpoint;
    }
  }
  assignment.set_heartbeat_interval_ms(absl::ToInt64Milliseconds(heartbeat_interval));
  return assignment;
}

absl::StatusOr<v1::WorkerAction> Runs::Heartbeat(const std::string& worker_id, int64_t step) {
  ASSIGN_OR_RETURN(const ParsedWorkerId id, ParseWorkerId(worker_id));
  absl::MutexLock lock(&mu_);
  Entry* entry = Find(id.run_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("worker_id: no run ", id.run_id));
  const v1::Run& run = entry->run;
  if (id.attempt != run.attempt() || run.state() != v1::RUN_STATE_RUNNING) {
    return v1::WORKER_ACTION_STOP;
  }
  if (entry->liveness_attempt != run.attempt()) {
    // A worker of the current attempt that registered with a scheduler before this one (its
    // gang was reattached): adopted as registered.
    entry->liveness_attempt = run.attempt();
    entry->ranks.assign(WorldOf(run), RankLiveness());
  }
  if (id.rank < 0 || id.rank >= static_cast<int>(entry->ranks.size())) {
    return v1::WORKER_ACTION_STOP;
  }
  RankLiveness& rank = entry->ranks[id.rank];
  rank.registered = true;
  rank.last_seen = absl::Now();
  rank.step = step;
  rank.worker_id = worker_id;
  return v1::WORKER_ACTION_CONTINUE;
}

absl::StatusOr<std::string> Runs::RunOfWorker(const std::string& worker_id) const {
  ASSIGN_OR_RETURN(const ParsedWorkerId id, ParseWorkerId(worker_id));
  absl::ReaderMutexLock lock(&mu_);
  const Entry* entry = Find(id.run_id);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("worker_id: no run ", id.run_id));
  if (id.attempt != entry->run.attempt()) {
    return absl::FailedPreconditionError(absl::StrCat("worker_id: attempt ", id.attempt,
                                                      " is over; the run is at attempt ",
                                                      entry->run.attempt()));
  }
  return id.run_id;
}

std::vector<RankLiveness> Runs::Liveness(const std::string& run_id) const {
  absl::ReaderMutexLock lock(&mu_);
  const Entry* entry = Find(run_id);
  if (entry == nullptr || entry->liveness_attempt != entry->run.attempt()) {
    return std::vector<RankLiveness>(entry == nullptr ? 0 : WorldOf(entry->run));
  }
  return entry->ranks;
}

}  // namespace prolong::scheduler
