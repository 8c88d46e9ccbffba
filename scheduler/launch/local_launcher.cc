#include "scheduler/launch/local_launcher.h"

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/exit_codes.h"
#include "scheduler/launch/process_gang.h"

namespace prolong::scheduler {
namespace {

class LocalGang : public Gang {
 public:
  explicit LocalGang(int world) : processes_(world) {}

  absl::Status Start(const GangSpec& spec) {
    std::vector<std::string> argv = WorkerArgs(spec);
    argv.insert(argv.begin() + 1, "");
    for (int rank = 0; rank < spec.world_size(); ++rank) {
      argv[1] = absl::StrCat("--rank=", rank);
      absl::Status started = processes_.Start(rank, argv, RankLogPath(spec.log_dir, rank));
      if (!started.ok()) {
        processes_.KillAll();
        return absl::Status(started.code(),
                            absl::StrCat("starting rank ", rank, ": ", started.message()));
      }
    }
    return absl::OkStatus();
  }

  GangStatus Poll() override {
    if (status_.state != GangState::kRunning) return status_;
    // Of the ranks that ended together, the one that names the cause: a rank killed by a signal
    // or stopped by a user error makes its peers fail in turn (their collectives break).
    const ProcessGang::Exit* cause = nullptr;
    auto rank_of = [](const ProcessGang::Exit& exit) {
      const int code = ExitCodeOf(exit.status);
      return code > 128 ? 0 : code == kExitUserError ? 1 : 2;
    };
    const std::vector<ProcessGang::Exit> exits = processes_.Reap();
    for (const ProcessGang::Exit& exit : exits) {
      if (ExitCodeOf(exit.status) == 0) continue;
      if (cause == nullptr || rank_of(exit) < rank_of(*cause)) cause = &exit;
    }
    if (cause != nullptr) {
      status_.state = GangState::kFailed;
      status_.reason = absl::StrCat("rank ", cause->rank, " ", DescribeExit(cause->status));
      status_.retryable = IsRetryableExitCode(ExitCodeOf(cause->status));
      processes_.KillAll();
      return status_;
    }
    if (processes_.running() == 0) status_.state = GangState::kSucceeded;
    return status_;
  }

  void Stop() override { processes_.KillAll(); }

  std::string Describe() const override {
    std::vector<int> pids;
    for (int rank = 0; rank < processes_.world(); ++rank) {
      if (processes_.started(rank)) pids.push_back(processes_.pid(rank));
    }
    return absl::StrCat("local pids ", absl::StrJoin(pids, ", "));
  }

 private:
  ProcessGang processes_;
  GangStatus status_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Gang>> LocalLauncher::Launch(const GangSpec& spec) {
  std::error_code error;
  std::filesystem::create_directories(spec.log_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("creating the log directory ", spec.log_dir, ": ", error.message()));
  }
  auto gang = std::make_unique<LocalGang>(spec.world_size());
  absl::Status started = gang->Start(spec);
  if (!started.ok()) return started;
  return gang;
}

}  // namespace prolong::scheduler
