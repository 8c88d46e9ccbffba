// Drives one run from PENDING to its end, one step at a time on the scheduler's DriverPool
// (driver_pool.h): for each stage in order it asks the datamixer for the plan, writes the
// stage's job (stage_job.h), persists the new attempt (so a worker of an older attempt is
// refused from then on), launches the gang, and watches it: exits through the launcher, silence
// through the heartbeats. A gang that outlives its scheduler (a Slurm job) is reattached by a
// restarted one, and checkpoints written while no scheduler listened are found in the stage's
// directory and recorded. A failed gang is stopped whole and, while restarts remain and the
// failure is not a user error, launched again after a backoff; the trainer resumes from the
// stage's newest checkpoint. A run found RUNNING with no gang (the scheduler restarted) is
// relaunched the same way, without counting a restart. A cancelled run has its gang stopped. A
// run whose stages are all trained (persisted, so a restarted scheduler does not train its last
// stage again) succeeds once its checkpoints' evaluations and side jobs have ended.
//
// Thread-safety: stepped by one thread at a time; the destructor stops the gang (not the run).
#ifndef PROLONG_SCHEDULER_RUN_DRIVER_H_
#define PROLONG_SCHEDULER_RUN_DRIVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "prolong/v1/datamixer.pb.h"
#include "scheduler/driver_pool.h"
#include "scheduler/launch/launcher.h"
#include "scheduler/runs.h"
#include "scheduler/wait_log.h"

namespace prolong::scheduler {

struct DriverOptions {
  // Where workers register, as they can reach it.
  std::string scheduler_address;
  std::string trainer_binary;
  // Runs' work directories default to <state_dir>/runs/<run id>.
  std::string state_dir;
  // The datamixer when a spec names none.
  std::string datamixer_address;
  int threads_per_worker = 0;
  absl::Duration poll_interval = absl::Milliseconds(50);
  // Before the n-th restart in a row with no checkpoint written between them (from 1):
  // base x 2^(n-1), at most a minute.
  absl::Duration restart_backoff = absl::Seconds(1);
  // The run's checkpoint evaluations (and side jobs) not yet ended: a trained run succeeds once
  // they have.
  std::function<int(const v1::Run& run)> pending_evaluations;
  // Why the run may not start its gang yet (a side job queued behind its parent's), as an
  // UNAVAILABLE status; OK when it may.
  std::function<absl::Status(const v1::Run& run)> may_start;
  // The run has ended; called once by the driver that saw it end.
  std::function<void(const v1::Run& run)> run_ended;
  // A checkpoint the driver recorded on the run itself (one written while no scheduler
  // listened), to be handled as a reported one is.
  std::function<void(const v1::Run& run, const v1::Checkpoint& checkpoint)> checkpoint_recorded;
  // The workers' TLS files (their --client-tls-* flags).
  ClientSecurityFiles worker_tls;
  // Where a run's reason to wait is logged: shared by the drivers of a scheduler, so that runs
  // waiting for one reason share a line. None: the driver has one of its own.
  std::shared_ptr<WaitLog> wait_log;
};

// The datamixer's plan of a stage of a spec.
using PlanStageFn =
    std::function<absl::StatusOr<v1::StagePlan>(const v1::RunSpec& spec, int stage_index)>;

// The run's work directory and the log directory of one of its attempts.
std::string RunWorkDir(const DriverOptions& options, const v1::Run& run);
std::string AttemptLogDir(const DriverOptions& options, const v1::Run& run, int64_t attempt);

class RunDriver : public SteppedTask {
 public:
  RunDriver(std::string run_id, Runs& runs, std::unique_ptr<Launcher> launcher,
            PlanStageFn plan_stage, DriverOptions options);
  ~RunDriver() override;
  RunDriver(const RunDriver&) = delete;
  RunDriver& operator=(const RunDriver&) = delete;

  // One look at the run. Once it has ended: its gang stopped, `run_ended` called, and
  // absl::InfiniteFuture() returned.
  absl::Time Step() override;

 private:
  // One look at the run; false once it has ended.
  bool Look();
  absl::Status StartStage(const v1::Run& run);
  // The gang of the run's current stage under `attempt`, without its job flags.
  GangSpec GangOf(const v1::Run& run, int64_t attempt) const;
  void Fault(const v1::Run& run, int rank, const std::string& reason, bool retryable);
  // Records the current stage's checkpoints that no worker reported (written while the
  // scheduler was down, or their report lost with it), so that the run lists every one and none
  // goes unevaluated.
  void RecordUnreportedCheckpoints(const v1::Run& run);

  const std::string run_id_;
  Runs& runs_;
  const std::unique_ptr<Launcher> launcher_;
  const PlanStageFn plan_stage_;
  const DriverOptions options_;
  const std::shared_ptr<WaitLog> wait_log_;  // options_.wait_log, or one of its own
  std::unique_ptr<Gang> gang_;
  absl::Time launched_;
  bool trained_ = false;  // the run's `trained`, as last seen
  absl::Time restart_at_;
  // Restarts since the gang last wrote a checkpoint, and the run's checkpoints at the last one.
  int failures_in_a_row_ = 0;
  int checkpoints_at_last_fault_ = 0;
  // Why the last try to start the stage failed (logged when it changes).
  std::string last_wait_reason_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_RUN_DRIVER_H_
