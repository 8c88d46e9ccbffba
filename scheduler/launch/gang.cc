#include "scheduler/launch/gang.h"

#include "absl/strings/str_cat.h"

namespace prolong::scheduler {

std::vector<std::string> WorkerArgs(const GangSpec& gang) {
  std::vector<std::string> args = {
      gang.trainer_binary,
      absl::StrCat("--world=", gang.world_size()),
      absl::StrCat("--dp=", gang.dp_size),
      absl::StrCat("--cp=", gang.cp_size),
      absl::StrCat("--scheduler=", gang.scheduler_address),
      absl::StrCat("--run-id=", gang.run_id),
      absl::StrCat("--attempt=", gang.attempt),
  };
  args.insert(args.end(), gang.job_args.begin(), gang.job_args.end());
  return args;
}

std::string RankLogPath(const std::string& log_dir, int rank) {
  return absl::StrCat(log_dir, "/rank-", rank, ".log");
}

}  // namespace prolong::scheduler
