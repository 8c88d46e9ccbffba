// Launchers place a gang's processes through an existing engine: local child processes, Slurm
// (sbatch + srun), Kubernetes (an Indexed Job). The scheduler decides what runs and when; the
// launcher only starts, watches and stops.
//
// Thread-safety: a Launcher may be called from any thread; a Gang from one thread at a time.
#ifndef PROLONG_SCHEDULER_LAUNCH_LAUNCHER_H_
#define PROLONG_SCHEDULER_LAUNCH_LAUNCHER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduler/launch/gang.h"

namespace prolong::scheduler {

enum class GangState {
  kRunning,    // started (or queued by the engine), not ended
  kSucceeded,  // every rank exited 0
  kFailed,     // a rank failed, or the engine gave up on the gang; the rest are stopped
};

struct GangStatus {
  GangState state = GangState::kRunning;
  // For kFailed: which rank and how ("rank 1 exited with code 2", "rank 0 was killed by signal
  // 9"), and whether trying again may help (exit_codes.h: a user error is not retried).
  std::string reason;
  bool retryable = true;
};

class Gang {
 public:
  virtual ~Gang() = default;
  // Looks at the processes without blocking. Once a rank fails the others are stopped before
  // kFailed is returned, so a failed gang holds no resources.
  virtual GangStatus Poll() = 0;
  // Stops every process of the gang (SIGKILL, scancel, deleting the Job) and waits until they
  // are gone or the engine has accepted it. Idempotent.
  virtual void Stop() = 0;
  // For logs and events: "pids 1201, 1202", "Slurm job 17".
  virtual std::string Describe() const = 0;
  // The engine's name for the gang, which a restarted scheduler reattaches to (Launcher::
  // Reattach); empty when the gang does not outlive its scheduler (local processes).
  virtual std::string JobId() const { return ""; }
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts every rank of the gang, or none of them: a gang that cannot start whole is stopped
  // before the error returns.
  virtual absl::StatusOr<std::unique_ptr<Gang>> Launch(const GangSpec& gang) = 0;
  // The gang a scheduler before this one launched as `job_id` (Gang::JobId). FAILED_PRECONDITION
  // for an engine whose gangs die with their scheduler.
  virtual absl::StatusOr<std::unique_ptr<Gang>> Reattach(const GangSpec& gang,
                                                         const std::string& job_id) {
    return absl::FailedPreconditionError("this launcher's gangs do not outlive their scheduler");
  }
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_LAUNCHER_H_
