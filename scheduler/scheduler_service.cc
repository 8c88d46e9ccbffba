#include "scheduler/scheduler_service.h"

#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/call_slots.h"
#include "common/file.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/security.h"
#include "common/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prometheus/gauge.h"
#include "scheduler/after_sft.h"
#include "scheduler/batch_worker.h"
#include "scheduler/call_workers.h"
#include "scheduler/driver_pool.h"
#include "scheduler/evaluation_handoff.h"
#include "scheduler/launch/local_launcher.h"
#include "scheduler/launch/slurm_launcher.h"
#include "scheduler/peer_backoff.h"
#include "scheduler/run_driver.h"
#include "scheduler/run_spec_check.h"
#include "scheduler/runs.h"
#include "scheduler/stage_job.h"

namespace prolong::scheduler {
namespace {

// gRPC's callback handlers (SubmitRun, GetRun) run on gRPC's own threads, and the server's
// Shutdown waits for them inside libgrpc, which is not built for ThreadSanitizer, so TSan cannot
// see that a service destroyed after Shutdown comes after its handlers. Each handler says when
// it is done with the service, and the destructor that it has waited for them all.
void HandlerDone([[maybe_unused]] const void* service) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(const_cast<void*>(service));
#endif
}
void HandlersWaitedFor([[maybe_unused]] const void* service) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<void*>(service));
#endif
}

constexpr absl::Duration kPlanTimeout = absl::Seconds(120);

grpc::Status Error(const absl::Status& status) { return ToGrpcStatus(status); }

// The Prometheus series of the runs, refreshed from the run records every second.
struct Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : runs(prometheus::BuildGauge()
                 .Name("prolong_scheduler_runs")
                 .Help("Runs by state.")
                 .Register(registry)),
        restarts(prometheus::BuildGauge()
                     .Name("prolong_scheduler_run_restarts")
                     .Help("Gang restarts of a run so far.")
                     .Register(registry)),
        stage(prometheus::BuildGauge()
                  .Name("prolong_scheduler_run_stage")
                  .Help("Index of the stage a run is at, from 0.")
                  .Register(registry)),
        step(prometheus::BuildGauge()
                 .Name("prolong_scheduler_run_step")
                 .Help("Optimizer steps of the current stage trained.")
                 .Register(registry)),
        stage_steps(prometheus::BuildGauge()
                        .Name("prolong_scheduler_run_stage_steps")
                        .Help("Optimizer steps in the current stage.")
                        .Register(registry)),
        loss(prometheus::BuildGauge()
                 .Name("prolong_scheduler_run_loss")
                 .Help("The last reported step's token-averaged loss.")
                 .Register(registry)),
        tokens_per_second(prometheus::BuildGauge()
                              .Name("prolong_scheduler_run_tokens_per_second")
                              .Help("The last reported step's tokens per second, whole gang.")
                              .Register(registry)),
        mfu(prometheus::BuildGauge()
                .Name("prolong_scheduler_run_mfu")
                .Help("The last reported step's model FLOPs utilization, in [0, 1].")
                .Register(registry)),
        heartbeat_age(prometheus::BuildGauge()
                          .Name("prolong_scheduler_heartbeat_age_seconds")
                          .Help("Seconds since a rank of a running gang was last heard from.")
                          .Register(registry)),
        evaluation_score(prometheus::BuildGauge()
                             .Name("prolong_scheduler_evaluation_score")
                             .Help("The newest evaluated checkpoint of a stage: its score per "
                                   "category and protocol (raw, or after_sft: after a short "
                                   "SFT), in [0, 100].")
                             .Register(registry)) {}

  prometheus::Family<prometheus::Gauge>& runs;
  prometheus::Family<prometheus::Gauge>& restarts;
  prometheus::Family<prometheus::Gauge>& stage;
  prometheus::Family<prometheus::Gauge>& step;
  prometheus::Family<prometheus::Gauge>& stage_steps;
  prometheus::Family<prometheus::Gauge>& loss;
  prometheus::Family<prometheus::Gauge>& tokens_per_second;
  prometheus::Family<prometheus::Gauge>& mfu;
  prometheus::Family<prometheus::Gauge>& heartbeat_age;
  prometheus::Family<prometheus::Gauge>& evaluation_score;
};

// The labelled series one refresh sets; a series the next refresh does not set again is removed,
// so ended runs and gone ranks leave /metrics.
class RefreshedSeries {
 public:
  void Set(prometheus::Family<prometheus::Gauge>& family,
           const std::map<std::string, std::string>& labels, double value) {
    prometheus::Gauge& gauge = family.Add(labels);
    gauge.Set(value);
    current_.insert({&family, &gauge});
  }
  void EndRefresh() {
    for (const auto& [family, gauge] : previous_) {
      if (current_.count({family, gauge}) == 0) family->Remove(gauge);
    }
    previous_ = std::move(current_);
    current_.clear();
  }

 private:
  using Series = std::pair<prometheus::Family<prometheus::Gauge>*, prometheus::Gauge*>;
  std::set<Series> previous_, current_;
};

}  // namespace

struct SchedulerService::State {
  State(SchedulerServiceOptions options, std::unique_ptr<Runs> runs, prometheus::Registry& registry)
      : options(std::move(options)),
        runs(std::move(runs)),
        metrics(registry),
        watches(this->options.max_watches, "WatchRun and StreamLogs streams (--max-watches)") {}

  // `field` names the stage in errors; empty: stages[stage_index]. With `backoff`, a datamixer
  // it holds back is not called: its last failure is the answer.
  absl::StatusOr<v1::StagePlan> PlanStage(const v1::RunSpec& spec, int stage_index,
                                          const std::string& field = "",
                                          PeerBackoff* backoff = nullptr);
  // A plan for a run's driver, or UNAVAILABLE (the run waits and retries) while
  // kMaxDriverPlans are in flight: each holds a driver thread while the datamixer computes (or
  // hangs, up to kPlanTimeout), and the other threads must go on watching running gangs. A
  // datamixer found missing is asked again by the next driver after datamixer_backoff's hold.
  absl::StatusOr<v1::StagePlan> DriverPlanStage(const v1::RunSpec& spec, int stage_index);
  void Drive(const v1::Run& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // SubmitRun's parts: what is checked on gRPC's thread (the caller's token, the spec), and a
  // dry run's plans.
  absl::Status CheckSubmission(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                               const v1::SubmitRunRequest& request) const;
  absl::Status DryRun(const v1::RunSpec& spec, v1::Run* response);
  struct QueuedSubmit;
  // The runs of a batch of submissions, written together, then driven; each call finished.
  void CreateRuns(std::vector<QueuedSubmit>& batch);
  void RefreshMetrics();
  DriverOptions Driving();
  // Hands a newly recorded checkpoint to the evaluator, or to a side job that fine-tunes it
  // first, as the run's policy asks.
  void Evaluate(const v1::Run& run, const v1::Checkpoint& checkpoint);
  // The same for the run's checkpoints that have no evaluation yet (a recovered run).
  void EvaluateCheckpoints(const v1::Run& run);
  // Submits (once) and drives the side job of the run's checkpoint; one that has ended already
  // gives the run its evaluation.
  void StartSideJob(const v1::Run& run, const v1::Checkpoint& checkpoint);
  // Why a side job waits for its parent's gang (evaluation.after_sft.resources unset).
  absl::Status MayStart(const v1::Run& run) const;
  // An ended side job's evaluation goes to its parent.
  void SideJobEnded(const v1::Run& side_job);
  void RecordEvaluation(const std::string& run_id, v1::EvaluationSummary summary,
                        const std::string& failure);
  // Adds the summary to the run unless it has one of that checkpoint and protocol.
  void AddEvaluation(const std::string& run_id, const v1::EvaluationSummary& summary);
  // Side jobs are cancelled with their run.
  void CancelSideJobs(const std::string& run_id);
  // Cancels a side job found running whose run was cancelled (the scheduler stopped in
  // between); true if it was.
  bool CancelledWithParent(const v1::Run& run);

  const SchedulerServiceOptions options;
  std::unique_ptr<Runs> runs;
  Metrics metrics;
  CallSlots watches;  // WatchRun and StreamLogs
  // DriverPlanStage's calls in flight.
  static constexpr int kMaxDriverPlans = 8;
  CallSlots driver_plans{kMaxDriverPlans, "plan calls to datamixers"};
  // Drivers retry a failed plan every 2 s; with one datamixer down, all of its pending runs
  // between them ask it as often as one of them would.
  PeerBackoff datamixer_backoff{absl::Seconds(2)};
  std::shared_ptr<WaitLog> wait_log = std::make_shared<WaitLog>();
  RefreshedSeries series;      // the metrics thread's
  std::string worker_targets;  // as last written
  std::unique_ptr<EvaluationHandoff> evaluations;

  absl::Mutex mu;
  std::string address ABSL_GUARDED_BY(mu);
  bool started ABSL_GUARDED_BY(mu) = false;
  // Steps the drivers of the runs not ended.
  std::unique_ptr<DriverPool> drivers = std::make_unique<DriverPool>();
  // Channels to the datamixers runs name; bounded, as specs may name any number over time.
  static constexpr size_t kMaxDatamixerChannels = 16;
  std::map<std::string, std::shared_ptr<v1::DataMixer::Stub>> datamixers ABSL_GUARDED_BY(mu);

  absl::Notification stopping;
  std::thread metrics_thread;
  // SubmitRun's blocking parts, off gRPC's threads: one thread creates the runs of the calls
  // queued meanwhile as one batch (CreateRuns), and dry runs have threads of their own.
  // ~SchedulerService ends them before anything else, once they have done what is queued.
  struct QueuedSubmit {
    const v1::SubmitRunRequest* request;
    v1::Run* response;
    grpc::ServerUnaryReactor* reactor;
  };
  std::unique_ptr<BatchWorker<QueuedSubmit>> submissions =
      std::make_unique<BatchWorker<QueuedSubmit>>(
          "submit-runs", [this](std::vector<QueuedSubmit>& batch) { CreateRuns(batch); });
  std::unique_ptr<CallWorkers> dry_run_workers = std::make_unique<CallWorkers>(2, "dry-runs");
};

DriverOptions SchedulerService::State::Driving() {
  DriverOptions driving;
  driving.trainer_binary = options.trainer_binary;
  driving.state_dir = options.state_dir;
  driving.datamixer_address = options.datamixer_address;
  driving.restart_backoff = options.restart_backoff;
  driving.worker_tls = options.worker_tls;
  driving.wait_log = wait_log;
  driving.pending_evaluations = [this](const v1::Run& run) {
    return evaluations->Pending(run.run_id()) + static_cast<int>(AwaitingAfterSft(run).size());
  };
  driving.may_start = [this](const v1::Run& run) { return MayStart(run); };
  driving.run_ended = [this](const v1::Run& run) { SideJobEnded(run); };
  driving.checkpoint_recorded = [this](const v1::Run& run, const v1::Checkpoint& checkpoint) {
    Evaluate(run, checkpoint);
  };
  return driving;
}

void SchedulerService::State::Evaluate(const v1::Run& run, const v1::Checkpoint& checkpoint) {
  if (EvaluatesRaw(run, checkpoint)) evaluations->Submit(run.run_id(), run.spec(), checkpoint);
  if (NeedsSideJob(run, checkpoint)) StartSideJob(run, checkpoint);
}

void SchedulerService::State::EvaluateCheckpoints(const v1::Run& run) {
  for (const v1::Checkpoint& checkpoint : run.checkpoints()) {
    if (EvaluatesRaw(run, checkpoint) &&
        !HasEvaluation(run, checkpoint.stage(), checkpoint.step(), v1::EVALUATION_PROTOCOL_RAW)) {
      evaluations->Submit(run.run_id(), run.spec(), checkpoint);
    }
  }
  for (const v1::Checkpoint& checkpoint : AwaitingAfterSft(run)) StartSideJob(run, checkpoint);
}

void SchedulerService::State::StartSideJob(const v1::Run& run, const v1::Checkpoint& checkpoint) {
  v1::SideJobOf of;
  of.set_run_id(run.run_id());
  *of.mutable_checkpoint() = checkpoint;
  bool created = false;
  absl::StatusOr<v1::Run> side =
      runs->Create(SideJobSpec(run.spec(), checkpoint), SideJobRequestId(run.run_id(), checkpoint),
                   &created, &of);
  if (!side.ok()) {
    PROLONG_LOG(ERROR) << "run " << run.run_id() << ": submitting the side job of "
                       << checkpoint.stage() << " step " << checkpoint.step() << ": "
                       << side.status().message();
    return;
  }
  if (!created) {
    if (IsTerminal(side->state())) SideJobEnded(*side);
    return;  // driven since it was created
  }
  PROLONG_LOG(INFO) << "run " << run.run_id() << ": side job " << side->run_id() << " fine-tunes "
                    << checkpoint.stage() << " step " << checkpoint.step()
                    << " before evaluating it";
  absl::MutexLock lock(&mu);
  if (started) Drive(*side);
}

absl::Status SchedulerService::State::MayStart(const v1::Run& run) const {
  if (!run.has_side_job_of()) return absl::OkStatus();
  absl::StatusOr<v1::Run> parent = runs->Get(run.side_job_of().run_id());
  if (!parent.ok() || parent->spec().evaluation().after_sft().has_resources()) {
    return absl::OkStatus();
  }
  if (!parent->trained() && !IsTerminal(parent->state())) {
    return absl::UnavailableError(
        absl::StrCat("queued behind run ", parent->run_id(),
                     ": its side jobs use its resources once it has trained every stage "
                     "(evaluation.after_sft.resources would name others)"));
  }
  // On the run's resources, one side job at a time, in the order they were submitted.
  const auto earlier = [](const v1::Run& a, const v1::Run& b) {
    return std::make_pair(google::protobuf::util::TimeUtil::TimestampToNanoseconds(a.create_time()),
                          a.run_id()) <
           std::make_pair(google::protobuf::util::TimeUtil::TimestampToNanoseconds(b.create_time()),
                          b.run_id());
  };
  for (const v1::Run& sibling : runs->List()) {
    if (sibling.side_job_of().run_id() == parent->run_id() && !IsTerminal(sibling.state()) &&
        earlier(sibling, run)) {
      return absl::UnavailableError(absl::StrCat("queued behind side job ", sibling.run_id(),
                                                 " on the resources of run ", parent->run_id()));
    }
  }
  return absl::OkStatus();
}

void SchedulerService::State::SideJobEnded(const v1::Run& side_job) {
  if (side_job.has_side_job_of()) {
    AddEvaluation(side_job.side_job_of().run_id(), AfterSftSummary(side_job));
  }
}

void SchedulerService::State::CancelSideJobs(const std::string& run_id) {
  for (const v1::Run& run : runs->List()) {
    if (run.side_job_of().run_id() != run_id || IsTerminal(run.state())) continue;
    absl::StatusOr<v1::Run> cancelled = runs->Transition(
        run.run_id(), v1::RUN_STATE_CANCELLED, absl::StrCat("cancelled with run ", run_id));
    if (!cancelled.ok() && cancelled.status().code() != absl::StatusCode::kFailedPrecondition) {
      PROLONG_LOG(ERROR) << "run " << run.run_id() << ": " << cancelled.status().message();
    }
    evaluations->Forget(run.run_id());
  }
}

bool SchedulerService::State::CancelledWithParent(const v1::Run& run) {
  if (!run.has_side_job_of()) return false;
  absl::StatusOr<v1::Run> parent = runs->Get(run.side_job_of().run_id());
  if (!parent.ok() || parent->state() != v1::RUN_STATE_CANCELLED) return false;
  CancelSideJobs(parent->run_id());
  return true;
}

void SchedulerService::State::RecordEvaluation(const std::string& run_id,
                                               v1::EvaluationSummary summary,
                                               const std::string& failure) {
  summary.set_failure(failure);
  summary.set_protocol(v1::EVALUATION_PROTOCOL_RAW);
  AddEvaluation(run_id, summary);
}

void SchedulerService::State::AddEvaluation(const std::string& run_id,
                                            const v1::EvaluationSummary& summary) {
  bool added = false;
  absl::StatusOr<v1::Run> run =
      runs->Update(run_id, [&](v1::Run& r, std::vector<v1::RunEvent>& events) {
        if (HasEvaluation(r, summary.stage(), summary.step(), ProtocolOf(summary))) {
          return absl::AlreadyExistsError("recorded before");
        }
        // Newest first.
        r.mutable_evaluations()->Add(v1::EvaluationSummary(summary));
        std::rotate(r.mutable_evaluations()->rbegin(), r.mutable_evaluations()->rbegin() + 1,
                    r.mutable_evaluations()->rend());
        *events.emplace_back().mutable_evaluation() = summary;
        added = true;
        return absl::OkStatus();
      });
  if (!run.ok() && run.status().code() != absl::StatusCode::kAlreadyExists) {
    PROLONG_LOG(ERROR) << "run " << run_id << ": " << run.status().message();
  }
  if (!run.ok() || !added) return;  // a side job seen ended again (a restart) is logged once
  const char* protocol =
      ProtocolOf(summary) == v1::EVALUATION_PROTOCOL_AFTER_SFT ? " after SFT" : "";
  if (!summary.failure().empty()) {
    PROLONG_LOG(WARNING) << "run " << run_id << ": evaluating " << summary.stage() << " step "
                         << summary.step() << protocol << " failed: " << summary.failure();
  } else if (!summary.side_job_run_id().empty()) {
    PROLONG_LOG(INFO) << "run " << run_id << ": " << summary.stage() << " step " << summary.step()
                      << " evaluated" << protocol << " by " << summary.side_job_run_id();
  }
}

absl::StatusOr<v1::StagePlan> SchedulerService::State::PlanStage(const v1::RunSpec& spec,
                                                                 int stage_index,
                                                                 const std::string& field,
                                                                 PeerBackoff* backoff) {
  const std::string address = spec.data().datamixer_address().empty()
                                  ? options.datamixer_address
                                  : spec.data().datamixer_address();
  const std::string where = absl::StrCat(
      field.empty() ? absl::StrCat("stages[", stage_index, "]") : field, ": datamixer ", address);
  if (backoff != nullptr) {
    const absl::Status held = backoff->Check(address, absl::Now());
    if (!held.ok()) return Annotate(held, where);
  }
  std::shared_ptr<v1::DataMixer::Stub> stub;
  {
    absl::MutexLock lock(&mu);
    if (datamixers.size() >= kMaxDatamixerChannels && datamixers.count(address) == 0) {
      datamixers.clear();  // calls in flight hold their stubs
    }
    std::shared_ptr<v1::DataMixer::Stub>& cached = datamixers[address];
    if (cached == nullptr) {
      cached = v1::DataMixer::NewStub(OpenChannel(address, options.outgoing));
    }
    stub = cached;
  }
  v1::PlanStageRequest request;
  *request.mutable_stage() = TrainerStage(spec, stage_index);
  request.set_seed(spec.seed());
  request.set_expected_fingerprint(spec.data().expected_fingerprint());
  v1::StagePlan plan;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kPlanTimeout));
  AddCredentials(context, options.outgoing);
  const absl::Status status = FromGrpcStatus(stub->PlanStage(&context, request, &plan));
  if (backoff != nullptr) backoff->Record(address, status, absl::Now());
  if (!status.ok()) return Annotate(status, where);
  return plan;
}

absl::StatusOr<v1::StagePlan> SchedulerService::State::DriverPlanStage(const v1::RunSpec& spec,
                                                                       int stage_index) {
  absl::StatusOr<CallSlots::Slot> slot = driver_plans.Take();
  if (!slot.ok()) return absl::UnavailableError(slot.status().message());
  return PlanStage(spec, stage_index, "", &datamixer_backoff);
}

void SchedulerService::State::Drive(const v1::Run& run) {
  std::unique_ptr<Launcher> launcher;
  if (run.spec().resources().has_slurm()) {
    SlurmLauncherOptions slurm;
    slurm.env = options.slurm_env;
    launcher = std::make_unique<SlurmLauncher>(run.spec().resources().slurm(), slurm);
  } else {
    launcher = std::make_unique<LocalLauncher>();
  }
  DriverOptions driving = Driving();
  driving.scheduler_address = address;
  drivers->Add(std::make_unique<RunDriver>(
      run.run_id(), *runs, std::move(launcher),
      [this](const v1::RunSpec& spec, int stage_index) {
        return DriverPlanStage(spec, stage_index);
      },
      std::move(driving)));
}

void SchedulerService::State::RefreshMetrics() {
  std::map<v1::RunState, int> by_state;
  for (int state = v1::RUN_STATE_PENDING; state <= v1::RUN_STATE_CANCELLED; ++state) {
    by_state[static_cast<v1::RunState>(state)] = 0;
  }
  const absl::Time now = absl::Now();
  // A run has series of its own from its start (before, they would all be 0) until an hour
  // after its end (for the last scrapes and alerts). Only those runs are copied: with thousands
  // of runs waiting to start, a copy and series of each every second held the service up.
  std::vector<v1::Run> shown;
  runs->ForEach([&](const v1::Run& run) {
    ++by_state[run.state()];
    const bool gone = IsTerminal(run.state()) &&
                      now - absl::FromUnixSeconds(run.end_time().seconds()) > absl::Hours(1);
    if (run.has_start_time() && !gone) shown.push_back(run);
  });
  nlohmann::json workers = nlohmann::json::array();
  for (const v1::Run& run : shown) {
    const std::map<std::string, std::string> labels = {{"run", run.run_id()}};
    series.Set(metrics.restarts, labels, run.restarts());
    series.Set(metrics.stage, labels, run.stage_index());
    series.Set(metrics.step, labels, static_cast<double>(run.step()));
    series.Set(metrics.stage_steps, labels, static_cast<double>(run.stage_steps()));
    if (run.has_latest_metrics()) {
      series.Set(metrics.loss, labels, run.latest_metrics().loss());
      series.Set(metrics.tokens_per_second, labels, run.latest_metrics().tokens_per_second());
      // No MFU is reported where the device's peak is unknown (a CPU): no series then.
      if (run.latest_metrics().mfu() > 0) {
        series.Set(metrics.mfu, labels, run.latest_metrics().mfu());
      }
    }
    // Each stage's newest scores per protocol (evaluations are newest first).
    std::set<std::map<std::string, std::string>> scored;
    for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
      const std::string protocol =
          ProtocolOf(evaluation) == v1::EVALUATION_PROTOCOL_AFTER_SFT ? "after_sft" : "raw";
      for (const auto& [category, score] : evaluation.category_scores()) {
        std::map<std::string, std::string> labels = {{"run", run.run_id()},
                                                     {"stage", evaluation.stage()},
                                                     {"category", category},
                                                     {"protocol", protocol}};
        if (scored.insert(labels).second) series.Set(metrics.evaluation_score, labels, score);
      }
    }
    // Only a running gang's ranks have heartbeats to age.
    if (run.state() != v1::RUN_STATE_RUNNING) continue;
    const std::vector<RankLiveness> ranks = runs->Liveness(run.run_id());
    for (int rank = 0; rank < static_cast<int>(ranks.size()); ++rank) {
      if (!ranks[rank].registered) continue;
      series.Set(metrics.heartbeat_age, {{"run", run.run_id()}, {"rank", absl::StrCat(rank)}},
                 absl::ToDoubleSeconds(now - ranks[rank].last_seen));
      if (!ranks[rank].metrics_address.empty()) {
        workers.push_back({{"targets", {ranks[rank].metrics_address}},
                           {"labels", {{"run", run.run_id()}, {"rank", absl::StrCat(rank)}}}});
      }
    }
  }
  // The running workers' /metrics for Prometheus' file-based discovery.
  const std::string targets = workers.dump(2) + "\n";
  if (targets != worker_targets) {
    const absl::Status written =
        WriteFileAtomically(options.state_dir + "/prometheus/workers.json", targets);
    if (written.ok()) {
      worker_targets = targets;
    } else {
      PROLONG_LOG(WARNING) << "writing the workers' scrape targets: " << written.message();
    }
  }
  for (const auto& [state, count] : by_state) {
    metrics.runs.Add({{"state", v1::RunState_Name(state).substr(strlen("RUN_STATE_"))}}).Set(count);
  }
  series.EndRefresh();
}

SchedulerService::SchedulerService(std::unique_ptr<State> state) : state_(std::move(state)) {}

SchedulerService::~SchedulerService() {
  HandlersWaitedFor(this);
  state_->submissions.reset();
  state_->dry_run_workers.reset();
  state_->stopping.Notify();
  if (state_->metrics_thread.joinable()) state_->metrics_thread.join();
  {
    absl::MutexLock lock(&state_->mu);
    state_->started = false;  // no run is driven from here on
  }
  state_->drivers.reset();  // each driver stops its gang
  state_->evaluations.reset();
}

absl::StatusOr<std::unique_ptr<SchedulerService>> SchedulerService::Create(
    const SchedulerServiceOptions& options, prometheus::Registry& registry) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("--state-dir: required");
  if (access(options.trainer_binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("--trainer-binary: ", options.trainer_binary, ": not an executable"));
  }
  std::error_code error;
  std::filesystem::create_directories(options.state_dir + "/prometheus", error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("--state-dir: cannot create ", options.state_dir, ": ", error.message()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Runs> runs,
                   Runs::Open(options.state_dir + "/state", options.max_unfinished_runs));
  auto state = std::make_unique<State>(options, std::move(runs), registry);
  State* s = state.get();
  state->evaluations = std::make_unique<EvaluationHandoff>(
      options.evaluator_address, options.outgoing,
      [s](const std::string& run_id, const v1::EvaluationSummary& summary,
          const std::string& failure) { s->RecordEvaluation(run_id, summary, failure); });
  return std::unique_ptr<SchedulerService>(new SchedulerService(std::move(state)));
}

void SchedulerService::Start(const std::string& address) {
  State& s = *state_;
  const std::vector<v1::Run> stored = s.runs->List();
  std::vector<v1::Run> recovered;
  {
    absl::MutexLock lock(&s.mu);
    s.address = address;
    s.started = true;
    for (const v1::Run& run : stored) {
      if (IsTerminal(run.state())) continue;
      if (s.CancelledWithParent(run)) continue;
      PROLONG_LOG(INFO) << "recovering run " << run.run_id() << " ("
                        << v1::RunState_Name(run.state()) << ", attempt " << run.attempt() << ")";
      s.Drive(run);
      recovered.push_back(run);
    }
  }
  for (const v1::Run& run : recovered) s.EvaluateCheckpoints(run);
  // Side jobs that ended while no scheduler handed their evaluation on.
  for (const v1::Run& run : stored) {
    if (IsTerminal(run.state())) s.SideJobEnded(run);
  }
  s.metrics_thread = std::thread([&s] {
    do {
      s.RefreshMetrics();
    } while (!s.stopping.WaitForNotificationWithTimeout(absl::Seconds(1)));
  });
}

absl::Status SchedulerService::State::CheckSubmission(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    const v1::SubmitRunRequest& request) const {
  RETURN_IF_ERROR(CheckBearerToken(metadata, options.auth_token));
  RETURN_IF_ERROR(RunSpecStatus(CheckRunSpec(request.spec(), PathRoots{options.path_roots})));
  if (request.spec().resources().has_kubernetes()) {
    return absl::FailedPreconditionError(
        "resources.kubernetes: this scheduler launches gangs locally or through Slurm; "
        "Kubernetes gangs are rendered as manifests (scheduler/launch/kubernetes_manifest.h) but "
        "not submitted");
  }
  return absl::OkStatus();
}

absl::Status SchedulerService::State::DryRun(const v1::RunSpec& spec, v1::Run* response) {
  response->set_run_id("");
  *response->mutable_spec() = spec;
  for (int k = 0; k < spec.stages_size(); ++k) {
    ASSIGN_OR_RETURN(*response->add_stage_plans(), PlanStage(spec, k));
  }
  if (spec.evaluation().has_after_sft()) {
    // The side jobs' stage, as the first of them would plan it.
    v1::Checkpoint first;
    first.set_stage(spec.stages(0).name());
    first.set_path(spec.checkpoint().directory());
    RETURN_IF_ERROR(PlanStage(SideJobSpec(spec, first), 0, "evaluation.after_sft.stage").status());
  }
  response->set_stage_steps(response->stage_plans(0).steps());
  return absl::OkStatus();
}

void SchedulerService::State::CreateRuns(std::vector<QueuedSubmit>& batch) {
  std::vector<Runs::Submission> submissions;
  submissions.reserve(batch.size());
  for (const QueuedSubmit& queued : batch) {
    Runs::Submission& submission = submissions.emplace_back();
    submission.spec = &queued.request->spec();
    submission.request_id = queued.request->request_id();
  }
  runs->CreateMany(submissions);
  for (const Runs::Submission& submission : submissions) {
    if (!submission.created) continue;
    PROLONG_LOG(INFO) << "run " << submission.run->run_id() << " submitted ("
                      << submission.spec->stages_size() << " stages)";
  }
  {
    absl::MutexLock lock(&mu);
    for (const Runs::Submission& submission : submissions) {
      if (submission.created && started) Drive(*submission.run);
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (submissions[i].run.ok()) *batch[i].response = *std::move(submissions[i].run);
    batch[i].reactor->Finish(Error(submissions[i].run.status()));
  }
}

grpc::ServerUnaryReactor* SchedulerService::SubmitRun(grpc::CallbackServerContext* context,
                                                      const v1::SubmitRunRequest* request,
                                                      v1::Run* response) {
  State& s = *state_;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Status checked = s.CheckSubmission(context->client_metadata(), *request);
  if (!checked.ok()) {
    reactor->Finish(Error(checked));
    HandlerDone(this);
    return reactor;
  }
  // What follows blocks (the synced write; a dry run's plan calls), so it runs off gRPC's
  // callback threads, and dry runs apart: a datamixer that hangs delays no submission.
  if (request->validate_only()) {
    s.dry_run_workers->Add([&s, request, response, reactor] {
      reactor->Finish(Error(s.DryRun(request->spec(), response)));
    });
  } else {
    s.submissions->Add({request, response, reactor});
  }
  HandlerDone(this);
  return reactor;
}

grpc::ServerUnaryReactor* SchedulerService::GetRun(grpc::CallbackServerContext* context,
                                                   const v1::GetRunRequest* request,
                                                   v1::Run* response) {
  // From memory, without blocking: answered on gRPC's thread.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<v1::Run> run = state_->runs->Get(request->run_id());
  if (run.ok()) *response = *std::move(run);
  reactor->Finish(Error(run.status()));
  HandlerDone(this);
  return reactor;
}

grpc::Status SchedulerService::ListRuns(grpc::ServerContext*, const v1::ListRunsRequest* request,
                                        v1::ListRunsResponse* response) {
  if (request->page_size() < 0) {
    return Error(absl::InvalidArgumentError("page_size: must be >= 0"));
  }
  int64_t offset = 0;
  if (!request->page_token().empty() &&
      (!absl::SimpleAtoi(request->page_token(), &offset) || offset < 0)) {
    return Error(absl::InvalidArgumentError("page_token: not one this scheduler gave"));
  }
  const int page_size = request->page_size() == 0 ? 100 : request->page_size();
  int64_t index = 0;
  for (v1::Run& run : state_->runs->List()) {
    bool wanted = request->states().empty();
    for (int state : request->states()) wanted |= state == run.state();
    if (!wanted || index++ < offset) continue;
    if (response->runs_size() == page_size) {
      response->set_next_page_token(absl::StrCat(offset + page_size));
      break;
    }
    *response->add_runs() = std::move(run);
  }
  return grpc::Status::OK;
}

grpc::Status SchedulerService::CancelRun(grpc::ServerContext* context,
                                         const v1::CancelRunRequest* request, v1::Run* response) {
  const absl::Status allowed = CheckBearerToken(*context, state_->options.auth_token);
  if (!allowed.ok()) return Error(allowed);
  absl::StatusOr<v1::Run> run = state_->runs->Get(request->run_id());
  if (!run.ok()) return Error(run.status());
  if (!IsTerminal(run->state())) {
    // Persisted first; the run's driver then stops its gang.
    run = state_->runs->Transition(
        request->run_id(), v1::RUN_STATE_CANCELLED,
        request->reason().empty() ? "cancelled" : absl::StrCat("cancelled: ", request->reason()));
    if (!run.ok() && run.status().code() == absl::StatusCode::kFailedPrecondition) {
      run = state_->runs->Get(request->run_id());  // it ended meanwhile
    }
    if (!run.ok()) return Error(run.status());
    state_->evaluations->Forget(request->run_id());
    state_->CancelSideJobs(request->run_id());
  }
  *response = *std::move(run);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::WatchRun(grpc::ServerContext* context,
                                        const v1::WatchRunRequest* request,
                                        grpc::ServerWriter<v1::RunEvent>* writer) {
  absl::StatusOr<CallSlots::Slot> slot = state_->watches.Take();
  if (!slot.ok()) return Error(slot.status());
  int64_t after = request->after_sequence();
  while (!context->IsCancelled()) {
    bool ended = false;
    absl::StatusOr<std::vector<v1::RunEvent>> events =
        state_->runs->WaitForEvents(request->run_id(), after, absl::Seconds(1), &ended);
    if (!events.ok()) return Error(events.status());
    for (const v1::RunEvent& event : *events) {
      if (!writer->Write(event)) return grpc::Status::CANCELLED;
      after = event.sequence();
    }
    if (ended) return grpc::Status::OK;
  }
  return grpc::Status::CANCELLED;
}

grpc::Status SchedulerService::StreamLogs(grpc::ServerContext* context,
                                          const v1::StreamLogsRequest* request,
                                          grpc::ServerWriter<v1::LogLines>* writer) {
  absl::StatusOr<CallSlots::Slot> slot = state_->watches.Take();
  if (!slot.ok()) return Error(slot.status());
  absl::StatusOr<v1::Run> run = state_->runs->Get(request->run_id());
  if (!run.ok()) return Error(run.status());
  const int64_t attempt = request->attempt() == 0 ? run->attempt() : request->attempt();
  if (attempt < 1 || attempt > run->attempt()) {
    return Error(absl::NotFoundError(absl::StrCat(
        "attempt: run ", run->run_id(), " has attempts 1 to ", run->attempt(), ", not ", attempt)));
  }
  const std::string path =
      RankLogPath(AttemptLogDir(state_->Driving(), *run, attempt), request->rank());
  std::ifstream log(path);
  if (!log) {
    return Error(absl::NotFoundError(absl::StrCat("rank: no log of rank ", request->rank(),
                                                  " in attempt ", attempt, " (", path, ")")));
  }
  std::string pending;
  while (true) {
    v1::LogLines lines;
    std::string line;
    while (std::getline(log, line)) {
      if (log.eof()) {
        pending += line;  // the rest of a line still being written
        break;
      }
      lines.add_lines(pending + line);
      pending.clear();
      if (lines.lines_size() == 1000) {
        if (!writer->Write(lines)) return grpc::Status::CANCELLED;
        lines.Clear();
      }
    }
    log.clear();
    if (lines.lines_size() > 0 && !writer->Write(lines)) return grpc::Status::CANCELLED;
    if (!request->follow()) break;
    run = state_->runs->Get(request->run_id());
    if (!run.ok() || run->attempt() != attempt || IsTerminal(run->state())) {
      // The attempt is over; what it wrote is all there.
      if (!pending.empty()) {
        v1::LogLines rest;
        rest.add_lines(pending);
        writer->Write(rest);
      }
      break;
    }
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return grpc::Status::OK;
}

grpc::Status SchedulerService::RegisterWorker(grpc::ServerContext*,
                                              const v1::RegisterWorkerRequest* request,
                                              v1::WorkerAssignment* response) {
  absl::StatusOr<v1::WorkerAssignment> assignment = state_->runs->RegisterWorker(
      *request, state_->options.datamixer_address, state_->options.heartbeat_interval);
  if (!assignment.ok()) return Error(assignment.status());
  PROLONG_LOG(INFO) << "worker " << assignment->worker_id() << " registered ("
                    << request->hostname() << ", pid " << request->pid() << ")";
  *response = *std::move(assignment);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                                         v1::HeartbeatResponse* response) {
  absl::StatusOr<v1::WorkerAction> action =
      state_->runs->Heartbeat(request->worker_id(), request->step());
  if (!action.ok()) return Error(action.status());
  response->set_action(*action);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::ReportMetrics(grpc::ServerContext*,
                                             const v1::ReportMetricsRequest* request,
                                             v1::ReportMetricsResponse*) {
  absl::StatusOr<std::string> run_id = state_->runs->RunOfWorker(request->worker_id());
  if (!run_id.ok()) return Error(run_id.status());
  if (request->metrics().empty()) return grpc::Status::OK;
  absl::StatusOr<v1::Run> run = state_->runs->Update(
      *run_id,
      [&](v1::Run& r, std::vector<v1::RunEvent>& events) {
        for (const v1::StepMetrics& metrics : request->metrics()) {
          *events.emplace_back().mutable_metrics() = metrics;
        }
        *r.mutable_latest_metrics() = *request->metrics().rbegin();
        r.set_step(r.latest_metrics().step());
        return absl::OkStatus();
      },
      RunStore::Durability::kBuffered);  // a step's numbers: not worth a sync each
  return run.ok() ? grpc::Status::OK : Error(run.status());
}

grpc::Status SchedulerService::ReportCheckpoint(grpc::ServerContext*,
                                                const v1::ReportCheckpointRequest* request,
                                                v1::ReportCheckpointResponse*) {
  absl::StatusOr<std::string> run_id = state_->runs->RunOfWorker(request->worker_id());
  if (!run_id.ok()) return Error(run_id.status());
  if (request->checkpoint().path().empty()) {
    return Error(absl::InvalidArgumentError("checkpoint.path: required"));
  }
  std::vector<v1::Checkpoint> added;
  absl::StatusOr<v1::Run> run =
      state_->runs->AddCheckpoints(*run_id, {request->checkpoint()}, &added);
  if (!run.ok()) return Error(run.status());
  for (const v1::Checkpoint& checkpoint : added) {
    PROLONG_LOG(INFO) << "run " << *run_id << ": checkpoint " << checkpoint.path();
    state_->Evaluate(*run, checkpoint);
  }
  return grpc::Status::OK;
}

}  // namespace prolong::scheduler
