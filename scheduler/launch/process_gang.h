// Worker processes on this machine, one per rank, started and watched together: what both
// `prolongctl train --local` and the scheduler's local launcher run gangs with.
//
// Each rank runs in a process group of its own (a terminal's Ctrl-C reaches only the launcher,
// which decides what the ranks get) and is killed if the thread that started it dies (so a
// crashed launcher leaves no orphan training). Its stdout and stderr go either line by line to
// a callback (lines of different ranks never mix) or to a log file.
//
// Thread-safety: one thread drives a ProcessGang; the line callback runs on reader threads.
#ifndef PROLONG_SCHEDULER_LAUNCH_PROCESS_GANG_H_
#define PROLONG_SCHEDULER_LAUNCH_PROCESS_GANG_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace prolong::scheduler {

class ProcessGang {
 public:
  // A line of a rank's output: `fd` is 1 (stdout) or 2 (stderr), without the newline.
  using LineSink = std::function<void(int rank, int fd, absl::string_view line)>;

  explicit ProcessGang(int world);
  // Kills (SIGKILL) and reaps the ranks still running, then waits for their output.
  ~ProcessGang();
  ProcessGang(const ProcessGang&) = delete;
  ProcessGang& operator=(const ProcessGang&) = delete;

  // Starts `argv` (argv[0] a path) as rank `rank`, its output to `sink`.
  absl::Status Start(int rank, const std::vector<std::string>& argv, LineSink sink);
  // Starts `argv` as rank `rank`, its stdout and stderr appended to `log_path`.
  absl::Status Start(int rank, const std::vector<std::string>& argv, const std::string& log_path);

  struct Exit {
    int rank = 0;
    int status = 0;  // waitpid's
  };
  // The ranks that ended since the last call, without blocking (`block`: waits for one).
  std::vector<Exit> Reap(bool block = false);

  // Sends `signal_number` to every running rank.
  void Signal(int signal_number);
  // SIGKILL to every running rank, then reaps them all.
  void KillAll();

  int world() const { return static_cast<int>(ranks_.size()); }
  int running() const { return running_; }
  bool started(int rank) const { return ranks_[rank].pid > 0; }
  pid_t pid(int rank) const { return ranks_[rank].pid; }

 private:
  absl::Status Spawn(int rank, const std::vector<std::string>& argv, int out, int err);

  struct Rank {
    pid_t pid = -1;
    bool running = false;
    std::vector<std::thread> readers;
  };
  std::vector<Rank> ranks_;
  int running_ = 0;
};

// "exited with code 2", "was killed by signal 9 (Killed)".
std::string DescribeExit(int status);
// The exit code, or 128 + the signal that ended the process (as a shell reports it).
int ExitCodeOf(int status);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_PROCESS_GANG_H_
