#include "scheduler/run_driver.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "google/protobuf/util/time_util.h"
#include "scheduler/run_spec_check.h"
#include "scheduler/stage_job.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/trainer_state.h"

namespace prolong::scheduler {
namespace {

absl::Duration DurationOr(const google::protobuf::Duration& duration, absl::Duration fallback) {
  if (duration.seconds() == 0 && duration.nanos() == 0) return fallback;
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

// Plans and launches wait, rather than fail, while a service is not there.
bool IsTransient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

// A checkpoint as its worker would have reported it, from what it holds.
v1::Checkpoint DescribeCheckpoint(const std::string& stage, const checkpoint::CheckpointRef& ref) {
  v1::Checkpoint described;
  described.set_stage(stage);
  described.set_path(ref.path);
  // A reported checkpoint's step is the stage's (its data cursor's), not the directory's, which
  // counts the steps of earlier stages too.
  absl::StatusOr<checkpoint::TrainerState> state = checkpoint::ReadTrainerState(ref.path);
  int64_t stage_step = ref.step;
  if (state.ok() && !absl::SimpleAtoi(state->data_cursor["global_step"], &stage_step)) {
    stage_step = ref.step;
  }
  described.set_step(stage_step);
  described.mutable_data_cursor()->set_next_step(stage_step);
  if (!state.ok()) return described;
  described.mutable_data_cursor()->set_plan_id(state->data_cursor["plan_id"]);
  described.mutable_data_cursor()->set_fingerprint(state->data_cursor["data_fingerprint"]);
  // RFC 3339; a checkpoint whose time does not parse is recorded without one.
  (void)google::protobuf::util::TimeUtil::FromString(state->saved_at, described.mutable_time());
  return described;
}

}  // namespace

std::string RunWorkDir(const DriverOptions& options, const v1::Run& run) {
  const std::string& work_dir = run.spec().resources().local().work_dir();
  return absl::StrCat(work_dir.empty() ? options.state_dir + "/runs" : work_dir, "/", run.run_id());
}

std::string AttemptLogDir(const DriverOptions& options, const v1::Run& run, int64_t attempt) {
  return absl::StrCat(RunWorkDir(options, run), "/logs/attempt-", attempt);
}

RunDriver::RunDriver(std::string run_id, Runs& runs, std::unique_ptr<Launcher> launcher,
                     PlanStageFn plan_stage, DriverOptions options)
    : run_id_(std::move(run_id)),
      runs_(runs),
      launcher_(std::move(launcher)),
      plan_stage_(std::move(plan_stage)),
      options_(std::move(options)),
      wait_log_(options_.wait_log != nullptr ? options_.wait_log : std::make_shared<WaitLog>()) {}

RunDriver::~RunDriver() {
  if (gang_ != nullptr) gang_->Stop();
}

absl::Time RunDriver::Step() {
  if (Look()) {
    // Counted from the end of this look (a plan call may have taken long). A gang is watched
    // closely; a run waiting to (re)start has nothing to watch until then.
    const absl::Time now = absl::Now();
    return now + (gang_ != nullptr || trained_
                      ? options_.poll_interval
                      : std::clamp(restart_at_ - now, options_.poll_interval, absl::Seconds(1)));
  }
  if (gang_ != nullptr) {
    gang_->Stop();
    gang_.reset();
  }
  if (options_.run_ended) {
    absl::StatusOr<v1::Run> run = runs_.Get(run_id_);
    if (run.ok() && IsTerminal(run->state())) options_.run_ended(*run);
  }
  return absl::InfiniteFuture();
}

bool RunDriver::Look() {
  if (absl::Now() < restart_at_) {
    // Waiting for its next try: if the run still waits, there is nothing to do, and no need to
    // copy it (a pending run is looked at every second, with thousands pending).
    const absl::StatusOr<v1::RunState> state = runs_.StateOf(run_id_);
    if (state.ok() && (*state == v1::RUN_STATE_PENDING || *state == v1::RUN_STATE_RESTARTING)) {
      return true;
    }
  }
  absl::StatusOr<v1::Run> run = runs_.Get(run_id_);
  if (!run.ok()) {
    PROLONG_LOG(ERROR) << "run " << run_id_ << ": " << run.status().message();
    return false;
  }
  if (IsTerminal(run->state())) return false;
  trained_ = run->trained();
  const absl::Time now = absl::Now();
  switch (run->state()) {
    case v1::RUN_STATE_PENDING:
    case v1::RUN_STATE_RESTARTING:
      if (now >= restart_at_) {
        absl::Status started = options_.may_start ? options_.may_start(*run) : absl::OkStatus();
        if (started.ok()) started = StartStage(*run);
        if (!started.ok()) {
          if (started.message() != last_wait_reason_) {  // once, not every retry
            wait_log_->Waiting(run_id_, started.message(), now);
            last_wait_reason_ = std::string(started.message());
            (void)runs_.SetPendingMessage(run_id_, absl::StrCat("waiting: ", last_wait_reason_));
          }
          restart_at_ = now + absl::Seconds(2);
        }
      }
      return true;
    case v1::RUN_STATE_RUNNING:
      break;
    default:
      PROLONG_LOG(ERROR) << "run " << run_id_ << " is in state " << run->state();
      return false;
  }
  if (trained_) {
    const int pending = options_.pending_evaluations ? options_.pending_evaluations(*run) : 0;
    if (pending > 0) return true;
    const int stages = run->spec().stages_size();
    absl::StatusOr<v1::Run> done = runs_.Transition(
        run_id_, v1::RUN_STATE_SUCCEEDED,
        absl::StrCat("all ", stages, " stage", stages > 1 ? "s" : "", " trained",
                     run->evaluations().empty() ? "" : " and their checkpoints evaluated"));
    if (!done.ok()) PROLONG_LOG(ERROR) << done.status().message();
    return false;
  }
  if (gang_ == nullptr && !run->launcher_job_id().empty()) {
    // Found running by a scheduler that just started: the gang of the one before may still run.
    absl::StatusOr<std::unique_ptr<Gang>> gang =
        launcher_->Reattach(GangOf(*run, run->attempt()), run->launcher_job_id());
    if (gang.ok()) {
      gang_ = *std::move(gang);
      launched_ = now;
      PROLONG_LOG(INFO) << "run " << run_id_ << ": reattached to attempt " << run->attempt() << ", "
                        << gang_->Describe();
      RecordUnreportedCheckpoints(*run);
      return true;
    }
    PROLONG_LOG(WARNING) << "run " << run_id_ << ": cannot reattach to " << run->launcher_job_id()
                         << ": " << gang.status().message();
  }
  if (gang_ == nullptr) {
    // Found running by a scheduler that just started, with a gang that died with the one before.
    absl::StatusOr<v1::Run> restarting =
        runs_.Transition(run_id_, v1::RUN_STATE_RESTARTING,
                         absl::StrCat("the scheduler restarted during attempt ", run->attempt(),
                                      ": relaunching from the newest checkpoint"));
    if (!restarting.ok()) PROLONG_LOG(ERROR) << restarting.status().message();
    restart_at_ = now;
    return true;
  }
  const GangStatus status = gang_->Poll();
  if (status.state == GangState::kFailed) {
    Fault(*run, -1, status.reason, status.retryable);
    return true;
  }
  if (status.state == GangState::kSucceeded) {
    gang_.reset();
    // Its last checkpoint is evaluated, also when the report of it was lost.
    RecordUnreportedCheckpoints(*run);
    const int stages = run->spec().stages_size();
    const int next = run->stage_index() + 1;
    if (next == stages) {
      // Succeeds once its evaluations and side jobs end.
      absl::StatusOr<v1::Run> trained = runs_.Update(run_id_, [](v1::Run& r, auto&) {
        r.set_trained(true);
        return absl::OkStatus();
      });
      if (!trained.ok()) PROLONG_LOG(ERROR) << trained.status().message();
      return true;
    }
    absl::StatusOr<v1::Run> advanced = runs_.Update(run_id_, [&](v1::Run& r, auto&) {
      r.set_stage_index(next);
      r.set_step(0);
      r.set_stage_steps(0);
      return absl::OkStatus();
    });
    if (!advanced.ok()) {
      PROLONG_LOG(ERROR) << advanced.status().message();
      return true;
    }
    const absl::Status started = StartStage(*advanced);
    if (!started.ok()) {
      // The stage is persisted; a pending run starts it when it can.
      (void)runs_.Transition(
          run_id_, v1::RUN_STATE_PENDING,
          absl::StrCat("waiting to start stage ", next + 1, ": ", started.message()));
      restart_at_ = now + absl::Seconds(2);
    }
    return true;
  }
  // Silence: a registered rank that stopped heartbeating, or one that never registered.
  const v1::FaultPolicy& fault = run->spec().fault();
  const absl::Duration heartbeat_timeout = DurationOr(fault.heartbeat_timeout(), absl::Seconds(60));
  const absl::Duration rendezvous_timeout =
      DurationOr(fault.rendezvous_timeout(), absl::Seconds(300));
  const std::vector<RankLiveness> ranks = runs_.Liveness(run_id_);
  for (int rank = 0; rank < static_cast<int>(ranks.size()); ++rank) {
    if (ranks[rank].registered && now - ranks[rank].last_seen > heartbeat_timeout) {
      Fault(*run, rank,
            absl::StrCat("rank ", rank, ": no heartbeat for ",
                         absl::FormatDuration(now - ranks[rank].last_seen), " (timeout ",
                         absl::FormatDuration(heartbeat_timeout), ")"),
            /*retryable=*/true);
      return true;
    }
    if (!ranks[rank].registered && now - launched_ > rendezvous_timeout) {
      Fault(*run, rank,
            absl::StrCat("rank ", rank, " did not register within ",
                         absl::FormatDuration(rendezvous_timeout)),
            /*retryable=*/true);
      return true;
    }
  }
  return true;
}

GangSpec RunDriver::GangOf(const v1::Run& run, int64_t attempt) const {
  const Layout layout = StageLayoutOf(run.spec(), run.stage_index());
  GangSpec gang;
  gang.run_id = run_id_;
  gang.attempt = attempt;
  gang.stage = run.spec().stages(run.stage_index()).name();
  gang.stage_index = run.stage_index();
  gang.dp_size = layout.dp;
  gang.cp_size = layout.cp;
  gang.scheduler_address = options_.scheduler_address;
  gang.trainer_binary = options_.trainer_binary;
  gang.log_dir = AttemptLogDir(options_, run, attempt);
  return gang;
}

absl::Status RunDriver::StartStage(const v1::Run& run) {
  const int stage_index = run.stage_index();
  const v1::StageSpec& stage = run.spec().stages(stage_index);
  const std::string stage_name = absl::StrCat("stage ", stage_index + 1, "/",
                                              run.spec().stages_size(), " (", stage.name(), ")");
  absl::StatusOr<v1::StagePlan> plan = plan_stage_(run.spec(), stage_index);
  if (!plan.ok()) {
    if (IsTransient(plan.status())) return plan.status();
    (void)runs_.Transition(
        run_id_, v1::RUN_STATE_FAILED,
        absl::StrCat(stage_name, ": the datamixer refused the plan: ", plan.status().message()));
    return absl::OkStatus();
  }
  RecordUnreportedCheckpoints(run);
  const Layout layout = StageLayoutOf(run.spec(), stage_index);
  StageJobOptions job_options;
  job_options.work_dir = RunWorkDir(options_, run);
  job_options.datamixer_address = options_.datamixer_address;
  job_options.threads_per_worker =
      options_.threads_per_worker > 0
          ? options_.threads_per_worker
          : std::max(
                1, static_cast<int>(std::thread::hardware_concurrency()) / (layout.dp * layout.cp));
  absl::StatusOr<worker::WorkerOptions> job = PrepareStageJob(run.spec(), stage_index, job_options);
  if (!job.ok()) {
    (void)runs_.Transition(run_id_, v1::RUN_STATE_FAILED,
                           absl::StrCat(stage_name, ": ", job.status().message()));
    return absl::OkStatus();
  }
  job->client_tls = options_.worker_tls;
  GangSpec gang = GangOf(run, run.attempt() + 1);
  gang.job_args = worker::JobFlagArgs(*job);
  // The attempt is on disk before any worker of it runs: workers of older ones are refused.
  absl::StatusOr<v1::Run> running = runs_.Transition(
      run_id_, v1::RUN_STATE_RUNNING,
      absl::StrCat(stage_name, ", attempt ", gang.attempt, ": ", gang.world_size(), " rank",
                   gang.world_size() > 1 ? "s" : "", " (dp ", layout.dp, " x cp ", layout.cp, ")"),
      [&](v1::Run& r, auto&) {
        r.set_attempt(gang.attempt);
        r.clear_rendezvous_address();
        r.clear_launcher_job_id();
        r.set_stage_steps(plan->steps());
        while (r.stage_plans_size() <= stage_index) r.add_stage_plans();
        *r.mutable_stage_plans(stage_index) = *plan;
        return absl::OkStatus();
      });
  if (!running.ok()) return running.status();
  launched_ = absl::Now();
  absl::StatusOr<std::unique_ptr<Gang>> launched = launcher_->Launch(gang);
  if (!launched.ok()) {
    Fault(*running, -1, absl::StrCat("launching the gang: ", launched.status().message()),
          /*retryable=*/true);
    return absl::OkStatus();
  }
  gang_ = *std::move(launched);
  // Where a restarted scheduler finds the gang again (empty for gangs that die with it).
  absl::StatusOr<v1::Run> recorded = runs_.Update(run_id_, [&](v1::Run& r, auto&) {
    r.set_launcher_job_id(gang_->JobId());
    return absl::OkStatus();
  });
  if (!recorded.ok()) PROLONG_LOG(ERROR) << recorded.status().message();
  PROLONG_LOG(INFO) << "run " << run_id_ << ": " << running->message() << ", " << gang_->Describe();
  return absl::OkStatus();
}

void RunDriver::Fault(const v1::Run& run, int rank, const std::string& reason, bool retryable) {
  if (gang_ != nullptr) {
    gang_->Stop();
    gang_.reset();
  }
  const int max_restarts = run.spec().fault().max_restarts();
  auto lost = [&](v1::Run& r, std::vector<v1::RunEvent>& events) {
    v1::WorkerLost& worker = *events.emplace_back().mutable_worker_lost();
    worker.set_rank(rank);
    if (rank >= 0) worker.set_worker_id(WorkerId(r.run_id(), r.attempt(), rank));
    worker.set_reason(reason);
    return absl::OkStatus();
  };
  absl::StatusOr<v1::Run> changed;
  if (!retryable) {
    changed = runs_.Transition(run_id_, v1::RUN_STATE_FAILED,
                               absl::StrCat(reason, " (a user error: not retried)"), lost);
  } else if (run.restarts() >= max_restarts) {
    changed = runs_.Transition(
        run_id_, v1::RUN_STATE_FAILED,
        absl::StrCat(reason, "; no restarts left (fault.max_restarts ", max_restarts, ")"), lost);
  } else {
    const int restart = run.restarts() + 1;
    changed = runs_.Transition(run_id_, v1::RUN_STATE_RESTARTING,
                               absl::StrCat(reason, "; restart ", restart, " of ", max_restarts,
                                            " from the newest checkpoint"),
                               [&](v1::Run& r, std::vector<v1::RunEvent>& events) {
                                 r.set_restarts(restart);
                                 return lost(r, events);
                               });
    // The backoff doubles with each restart in a row whose gang wrote no checkpoint, and
    // starts over once one has (as Kubernetes starts a crash loop's backoff over once a
    // container has run a while): a long run with occasional faults never waits the minute.
    if (run.checkpoints_size() > checkpoints_at_last_fault_) failures_in_a_row_ = 0;
    checkpoints_at_last_fault_ = run.checkpoints_size();
    restart_at_ =
        absl::Now() + std::min(options_.restart_backoff * (1 << std::min(failures_in_a_row_++, 10)),
                               absl::Minutes(1));
  }
  if (!changed.ok()) PROLONG_LOG(ERROR) << "run " << run_id_ << ": " << changed.status().message();
}

void RunDriver::RecordUnreportedCheckpoints(const v1::Run& run) {
  const std::string& stage = run.spec().stages(run.stage_index()).name();
  const std::string dir = StageCheckpointDir(run.spec(), run.stage_index());
  absl::StatusOr<std::vector<checkpoint::CheckpointRef>> listed = checkpoint::ListCheckpoints(dir);
  if (!listed.ok()) {
    PROLONG_LOG(WARNING) << "run " << run_id_ << ": " << listed.status().message();
    return;
  }
  std::vector<v1::Checkpoint> found;
  for (const checkpoint::CheckpointRef& ref : *listed) {
    v1::Checkpoint described = DescribeCheckpoint(stage, ref);
    if (HasCheckpoint(run, stage, described.step())) continue;
    // One that does not verify is being written, or broken: the trainer passes over it too.
    if (!checkpoint::VerifyCheckpoint(ref.path, checkpoint::Verification::kSizesOnly).ok())
      continue;
    found.push_back(std::move(described));
  }
  if (found.empty()) return;
  std::vector<v1::Checkpoint> added;
  absl::StatusOr<v1::Run> recorded = runs_.AddCheckpoints(run_id_, found, &added);
  if (!recorded.ok()) {
    PROLONG_LOG(ERROR) << "run " << run_id_ << ": " << recorded.status().message();
    return;
  }
  for (const v1::Checkpoint& checkpoint : added) {
    PROLONG_LOG(INFO) << "run " << run_id_ << ": checkpoint " << checkpoint.path()
                      << " was not reported; recorded";
    if (options_.checkpoint_recorded) options_.checkpoint_recorded(*recorded, checkpoint);
  }
}

}  // namespace prolong::scheduler
