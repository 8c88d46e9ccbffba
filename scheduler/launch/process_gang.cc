#include "scheduler/launch/process_gang.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace prolong::scheduler {
namespace {

// Calls `sink` with each line read from `from` until it closes.
void ReadLines(int from, int rank, int fd, const ProcessGang::LineSink& sink) {
  std::string pending;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = read(from, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t begin = 0;
    for (size_t end; (end = pending.find('\n', begin)) != std::string::npos; begin = end + 1) {
      sink(rank, fd, absl::string_view(pending).substr(begin, end - begin));
    }
    pending.erase(0, begin);
  }
  if (!pending.empty()) sink(rank, fd, pending);
  close(from);
}

}  // namespace

ProcessGang::ProcessGang(int world) : ranks_(world) {}

ProcessGang::~ProcessGang() {
  KillAll();
  for (Rank& rank : ranks_) {
    for (std::thread& reader : rank.readers) reader.join();
  }
}

absl::Status ProcessGang::Spawn(int rank, const std::vector<std::string>& argv, int out, int err) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
        dup2(err, STDERR_FILENO) < 0) {
      _exit(127);
    }
    execv(args[0], args.data());
    static const char kMessage[] = "cannot execute the worker binary\n";
    (void)!write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
    _exit(127);
  }
  ranks_[rank].pid = pid;
  ranks_[rank].running = true;
  ++running_;
  return absl::OkStatus();
}

absl::Status ProcessGang::Start(int rank, const std::vector<std::string>& argv, LineSink sink) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  const absl::Status spawned = Spawn(rank, argv, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (!spawned.ok()) {
    close(out[0]);
    close(err[0]);
    return spawned;
  }
  ranks_[rank].readers.emplace_back(ReadLines, out[0], rank, 1, sink);
  ranks_[rank].readers.emplace_back(ReadLines, err[0], rank, 2, std::move(sink));
  return absl::OkStatus();
}

absl::Status ProcessGang::Start(int rank, const std::vector<std::string>& argv,
                                const std::string& log_path) {
  const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    return absl::InternalError(absl::StrCat("opening ", log_path, ": ", std::strerror(errno)));
  }
  const absl::Status spawned = Spawn(rank, argv, log, log);
  close(log);
  return spawned;
}

std::vector<ProcessGang::Exit> ProcessGang::Reap(bool block) {
  std::vector<Exit> exits;
  while (running_ > 0) {
    for (int r = 0; r < static_cast<int>(ranks_.size()); ++r) {
      Rank& rank = ranks_[r];
      int status = 0;
      if (!rank.running || waitpid(rank.pid, &status, WNOHANG) != rank.pid) continue;
      rank.running = false;
      --running_;
      exits.push_back({r, status});
    }
    if (!block || !exits.empty() || running_ == 0) break;
    usleep(10 * 1000);
  }
  return exits;
}

void ProcessGang::Signal(int signal_number) {
  for (const Rank& rank : ranks_) {
    if (rank.running) kill(rank.pid, signal_number);
  }
}

void ProcessGang::KillAll() {
  Signal(SIGKILL);
  while (running_ > 0) Reap(/*block=*/true);
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("ended with status ", status);
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace prolong::scheduler
