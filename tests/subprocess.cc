#include "tests/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"

extern char** environ;

namespace prolong::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/prolong-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const std::vector<std::string>& argv,
                                                              const std::string& stdin_path) {
  static std::atomic<int> counter{0};
  std::unique_ptr<Subprocess> process(new Subprocess());
  const std::string dir = MakeTempDir();
  const int id = counter++;
  process->stdout_path_ = absl::StrCat(dir, "/stdout.", id);
  process->stderr_path_ = absl::StrCat(dir, "/stderr.", id);

  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const char* in_path = stdin_path.empty() ? "/dev/null" : stdin_path.c_str();
  const char* out_path = process->stdout_path_.c_str();
  const char* err_path = process->stderr_path_.c_str();
  const pid_t parent = getpid();

  process->pid_ = fork();
  if (process->pid_ < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (process->pid_ == 0) {
    // Dies with the test even if the test crashes before its destructors run.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int in = open(in_path, O_RDONLY);
    const int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(127);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execve(args[0], args.data(), environ);
    _exit(127);
  }
  process->running_ = true;
  return process;
}

Subprocess::~Subprocess() {
  if (running_) {
    kill(pid_, SIGKILL);
    Reap(/*block=*/true);
  }
}

bool Subprocess::Reap(bool block) {
  if (!running_) return true;
  int status = 0;
  const pid_t done = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (done != pid_) return false;
  running_ = false;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

absl::StatusOr<std::string> Subprocess::ReadStdoutLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const bool exited = Reap(/*block=*/false);  // Read after reaping: nothing is missed.
    const std::string text = Stdout();
    const size_t newline = text.find('\n', stdout_consumed_);
    if (newline != std::string::npos) {
      std::string line = text.substr(stdout_consumed_, newline - stdout_consumed_);
      stdout_consumed_ = newline + 1;
      return line;
    }
    if (exited) {
      return absl::OutOfRangeError(
          absl::StrCat("process exited with code ", exit_code_, "; stderr: ", Stderr()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no stdout line; stderr: ", Stderr()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

std::string Subprocess::Stdout() const { return ReadFile(stdout_path_); }

std::string Subprocess::Stderr() const { return ReadFile(stderr_path_); }

void Subprocess::Signal(int signal_number) const {
  if (running_) kill(pid_, signal_number);
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Reap(/*block=*/false)) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("pid ", pid_, " still running"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_code_;
}

absl::Status RunGang(int world,
                     const std::function<std::vector<std::string>(int rank)>& argv_for_rank,
                     absl::Duration timeout) {
  std::vector<std::unique_ptr<Subprocess>> ranks;
  for (int rank = 0; rank < world; ++rank) {
    absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv_for_rank(rank));
    if (!process.ok()) return process.status();
    ranks.push_back(*std::move(process));
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (int rank = 0; rank < world; ++rank) {
    absl::StatusOr<int> exit_code = ranks[rank]->Wait(deadline - absl::Now());
    if (!exit_code.ok()) {
      return Annotate(exit_code.status(), absl::StrCat("rank ", rank));
    }
    if (*exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("rank ", rank, " exited with ", *exit_code, ": ", ranks[rank]->Stderr()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RunResult> Run(const std::vector<std::string>& argv, absl::Duration timeout,
                              const std::string& stdin_path) {
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv, stdin_path);
  if (!process.ok()) return process.status();
  absl::StatusOr<int> exit_code = (*process)->Wait(timeout);
  if (!exit_code.ok()) return exit_code.status();
  return RunResult{*exit_code, (*process)->Stdout(), (*process)->Stderr()};
}

}  // namespace prolong::testing
