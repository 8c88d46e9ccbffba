// Runs a program as a child process for multi-process tests: its stdout and stderr go to files
// (no pipe to fill up and block it), its lines can be awaited, and it is killed and reaped on
// destruction if still running, or when the test process dies first.
#ifndef PROLONG_TESTS_SUBPROCESS_H_
#define PROLONG_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace prolong::testing {

class Subprocess {
 public:
  // Starts argv[0] (a path) with the given arguments; stdin from `stdin_path` or /dev/null.
  // A program that cannot be executed exits with code 127.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const std::vector<std::string>& argv,
                                                           const std::string& stdin_path = "");

  ~Subprocess();  // SIGKILL and reap if still running.
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits for the next complete stdout line (without its newline). DEADLINE_EXCEEDED on
  // timeout, OUT_OF_RANGE if the process exited first.
  absl::StatusOr<std::string> ReadStdoutLine(absl::Duration timeout);

  // Everything written so far.
  std::string Stdout() const;
  std::string Stderr() const;

  void Signal(int signal_number) const;

  // Waits for the process to end. Returns its exit code, or 128 + signal if a signal ended it.
  // DEADLINE_EXCEEDED if it is still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  Subprocess() = default;
  bool Reap(bool block);

  pid_t pid_ = -1;
  bool running_ = false;
  int exit_code_ = -1;
  std::string stdout_path_;
  std::string stderr_path_;
  size_t stdout_consumed_ = 0;
};

// Runs a program to completion and returns its exit code and output (tools like promtool).
struct RunResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};
absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv, absl::Duration timeout,
                              const std::string& stdin_path = "");

// Starts one process per rank of a gang (argv_for_rank(rank) for rank 0..world-1) and waits
// for all of them. OK if every rank exits 0; otherwise the first failure, naming the rank, its
// exit code and its stderr.
absl::Status RunGang(int world,
                     const std::function<std::vector<std::string>(int rank)>& argv_for_rank,
                     absl::Duration timeout);

// A fresh directory under $TEST_TMPDIR (or /tmp).
std::string MakeTempDir();

}  // namespace prolong::testing

#endif  // PROLONG_TESTS_SUBPROCESS_H_
