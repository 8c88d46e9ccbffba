// A gang: the worker processes of one attempt at one stage of a run, started together and
// stopped together. Every launcher starts the same command on every rank (WorkerArgs): the
// trainer in scheduler mode, which registers with the scheduler, learns the gang's rendezvous
// from it and reports as it trains. A rank learns its number from --rank, or from the engine's
// environment (SLURM_PROCID under Slurm, JOB_COMPLETION_INDEX in a Kubernetes Indexed Job).
#ifndef PROLONG_SCHEDULER_LAUNCH_GANG_H_
#define PROLONG_SCHEDULER_LAUNCH_GANG_H_

#include <cstdint>
#include <string>
#include <vector>

namespace prolong::scheduler {

struct GangSpec {
  std::string run_id;
  int64_t attempt = 0;
  // The stage's name and index in the RunSpec.
  std::string stage;
  int stage_index = 0;
  int dp_size = 1;
  int cp_size = 1;
  int world_size() const { return dp_size * cp_size; }
  // Where workers register (host:port, reachable from where they run).
  std::string scheduler_address;
  // The trainer binary as the workers' machines see it.
  std::string trainer_binary;
  // The job's flags, the same on every rank (trainer/worker/worker_options.h JobFlagArgs).
  std::vector<std::string> job_args;
  // Where the launcher keeps the gang's logs (one file per rank) and scratch files.
  std::string log_dir;
};

// The trainer's command line for every rank, without the rank: the binary, the gang's place
// (--world, --dp, --cp), the scheduler flags and the job's flags.
std::vector<std::string> WorkerArgs(const GangSpec& gang);

// The log file of `rank` in `log_dir`.
std::string RankLogPath(const std::string& log_dir, int rank);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_GANG_H_
