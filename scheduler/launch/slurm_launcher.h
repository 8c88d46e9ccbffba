// Places a gang as one Slurm batch job: sbatch allocates every rank's resources at once (so the
// gang starts whole or stays queued), and the job's script runs one `srun` task per rank with
// --kill-on-bad-exit, so that one failed rank ends them all. The job's state and exit code come
// from `scontrol show job` (which needs no accounting storage), or from `sacct` once slurmctld
// has forgotten a finished job.
//
// Files the launcher and the job leave in the gang's log_dir, which must be visible at the same
// path to the scheduler and to every node (a shared file system):
//   gang.sbatch        the batch script
//   slurm-JOB.log      the batch script's own output (srun's messages)
//   rank-R.log         rank R's stdout and stderr (RankLogPath)
//   slurm-JOB.failed   "R C": the first rank that failed and its exit code
//   slurm-JOB.exit     the job's exit code, written when the script ends
// The job exits with the first failed rank's code rather than srun's (the highest code, often
// that of a rank stopped after the real failure), so Slurm's ExitCode decides retryability.
//
// Thread-safety: as launcher.h says.
#ifndef PROLONG_SCHEDULER_LAUNCH_SLURM_LAUNCHER_H_
#define PROLONG_SCHEDULER_LAUNCH_SLURM_LAUNCHER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prolong/v1/run_spec.pb.h"
#include "scheduler/launch/gang.h"
#include "scheduler/launch/launcher.h"

namespace prolong::scheduler {

struct SlurmLauncherOptions {
  // Slurm's client programs: a path, or a name looked up on PATH.
  std::string sbatch = "sbatch";
  std::string scontrol = "scontrol";
  std::string scancel = "scancel";
  std::string sacct = "sacct";
  // Set (over this process's own environment) for those programs, e.g. SLURM_CONF. sbatch
  // hands its environment to the job, so the workers see these variables too.
  std::map<std::string, std::string> env;
  // A client command still running after this is killed (a controller that does not answer).
  absl::Duration command_timeout = absl::Seconds(60);
  // How long Stop waits for the job to end after scancel; Slurm's KillWait (30 s by default)
  // passes between SIGTERM and SIGKILL.
  absl::Duration stop_timeout = absl::Minutes(2);
  // How often Stop asks whether the job has ended.
  absl::Duration stop_poll_interval = absl::Milliseconds(200);
  // How often Poll asks Slurm about a running job; in between it answers "running" (a job is
  // seen ending up to this late). The scheduler looks at a gang every 50 ms, and every question
  // is a process here and a call on slurmctld.
  absl::Duration query_interval = absl::Seconds(1);
};

// One submitted batch job. Launch and Reattach make them.
class SlurmGang : public Gang {
 public:
  SlurmGang(int64_t job_id, std::string log_dir, SlurmLauncherOptions options);

  // kRunning while the job is queued, running or completing, while Slurm cannot be asked (the
  // controller is down), and between questions (query_interval). kFailed names the first failed
  // rank and its exit code ("rank 1 exited with code 2 (Slurm job 17)"), a signal, or the job's end
  // state (CANCELLED, TIMEOUT, NODE_FAIL...); only a rank's user-error code (exit_codes.h) is not
  // retryable. The final status is remembered.
  GangStatus Poll() override;
  // scancel (once it has succeeded), then waits up to stop_timeout until the job has ended.
  void Stop() override;
  // "Slurm job 17".
  std::string Describe() const override;

  std::string JobId() const override;
  int64_t job_id() const { return job_id_; }

 private:
  int64_t job_id_;
  std::string log_dir_;
  SlurmLauncherOptions options_;
  std::optional<GangStatus> final_;
  absl::Time next_query_ = absl::InfinitePast();
  bool cancelled_ = false;
};

class SlurmLauncher : public Launcher {
 public:
  explicit SlurmLauncher(v1::SlurmLauncher config, SlurmLauncherOptions options = {});

  // Writes log_dir/gang.sbatch (creating log_dir) and submits it with sbatch. The returned Gang
  // is a SlurmGang. INVALID_ARGUMENT naming the field for a spec that cannot be placed (negative
  // counts, nodes x tasks_per_node not the world size, an empty log_dir or trainer_binary);
  // FAILED_PRECONDITION with sbatch's words when it refuses the job ("sbatch: exit 1: sbatch:
  // error: invalid partition specified: foo") or cannot be run; UNAVAILABLE when it cannot reach
  // the controller.
  absl::StatusOr<std::unique_ptr<Gang>> Launch(const GangSpec& gang) override;

  // The gang of a job submitted earlier (by a scheduler process that has since restarted), with
  // the log_dir it was launched with.
  std::unique_ptr<SlurmGang> Reattach(int64_t job_id, const std::string& log_dir) const;
  // The same for Launcher: `job_id` is a SlurmGang's JobId.
  absl::StatusOr<std::unique_ptr<Gang>> Reattach(const GangSpec& gang,
                                                 const std::string& job_id) override;

 private:
  v1::SlurmLauncher config_;
  SlurmLauncherOptions options_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_SLURM_LAUNCHER_H_
