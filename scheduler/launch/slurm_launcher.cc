#include "scheduler/launch/slurm_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/exit_codes.h"
#include "common/file.h"
#include "common/log.h"
#include "common/status_macros.h"

extern char** environ;

namespace prolong::scheduler {
namespace {

// ---------------------------------------------------------------------------------------------
// Running Slurm's client commands.

struct CommandResult {
  int exit_code = 0;  // 128 + n if signal n ended it
  std::string out;
  std::string err;
};

std::string ProgramName(const std::string& program) {
  const size_t slash = program.rfind('/');
  return slash == std::string::npos ? program : program.substr(slash + 1);
}

absl::StatusOr<std::string> FindProgram(const std::string& program,
                                        const std::map<std::string, std::string>& env) {
  if (program.find('/') != std::string::npos) {
    if (access(program.c_str(), X_OK) == 0) return program;
    return absl::FailedPreconditionError(
        absl::StrCat(ProgramName(program), ": ", program, " is not an executable file"));
  }
  std::string path;
  if (auto it = env.find("PATH"); it != env.end()) {
    path = it->second;
  } else if (const char* own = std::getenv("PATH"); own != nullptr) {
    path = own;
  } else {
    path = "/usr/bin:/bin";
  }
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", program);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::FailedPreconditionError(
      absl::StrCat(program, ": not found on PATH (", path, "); is Slurm installed?"));
}

// This process's environment with `extra` set over it.
std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    absl::string_view text(*entry);
    const absl::string_view name = text.substr(0, text.find('='));
    if (extra.find(std::string(name)) == extra.end()) env.emplace_back(text);
  }
  for (const auto& [name, value] : extra) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Runs `program args...` without a shell, stdin from /dev/null, and returns its exit code and
// output. An error only when it cannot be started or does not end within the timeout.
absl::StatusOr<CommandResult> RunCommand(const std::string& program,
                                         const std::vector<std::string>& args,
                                         const SlurmLauncherOptions& options) {
  const std::string name = ProgramName(program);
  ASSIGN_OR_RETURN(const std::string path, FindProgram(program, options.env));
  std::vector<std::string> argv_strings = {name};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings = Environment(options.env);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int error = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(error)));
  }
  // posix_spawn rather than fork: the scheduler is multi-threaded, and the child must not touch
  // locks another thread held at the fork.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  pid_t pid = -1;
  const int spawn_error =
      posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawn_error != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot run ", path, ": ", std::strerror(spawn_error)));
  }

  CommandResult result;
  const absl::Time deadline = absl::Now() + options.command_timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      timed_out = true;
      break;
    }
    const int ready = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, n);
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (timed_out || absl::Now() > deadline) {
      timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(name, ": no answer after ",
                                                    absl::FormatDuration(options.command_timeout),
                                                    "; is slurmctld up?"));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// "sbatch: exit 1: sbatch: error: invalid partition specified: foo; ...".
std::string CommandFailure(const std::string& program, const CommandResult& result) {
  std::string words(absl::StripAsciiWhitespace(result.err.empty() ? result.out : result.err));
  absl::StrReplaceAll({{"\n", "; "}}, &words);
  return absl::StrCat(ProgramName(program), ": exit ", result.exit_code, ": ", words);
}

// ---------------------------------------------------------------------------------------------
// The batch script.

std::string ShellQuote(absl::string_view text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// Slurm's D-HH:MM:SS, whole seconds rounded up.
std::string SlurmTime(const google::protobuf::Duration& duration) {
  const int64_t total = duration.seconds() + (duration.nanos() > 0 ? 1 : 0);
  return absl::StrFormat("%d-%02d:%02d:%02d", total / 86400, total / 3600 % 24, total / 60 % 60,
                         total % 60);
}

absl::Status CheckGang(const v1::SlurmLauncher& config, const GangSpec& gang) {
  if (gang.world_size() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("gang: dp x cp must be at least 1, got ", gang.world_size()));
  }
  if (gang.log_dir.empty()) return absl::InvalidArgumentError("gang: log_dir is empty");
  if (absl::StrContains(gang.log_dir, '%')) {
    // Slurm would read it as a file name pattern.
    return absl::InvalidArgumentError(
        absl::StrCat("gang: log_dir must not contain '%': ", gang.log_dir));
  }
  if (gang.trainer_binary.empty()) {
    return absl::InvalidArgumentError("gang: trainer_binary is empty");
  }
  for (const auto& [name, value] : {std::pair<const char*, int>{"nodes", config.nodes()},
                                    {"tasks_per_node", config.tasks_per_node()},
                                    {"gpus_per_node", config.gpus_per_node()}}) {
    if (value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("slurm.", name, " must not be negative, got ", value));
    }
  }
  if (config.time_limit().seconds() < 0 || config.time_limit().nanos() < 0) {
    return absl::InvalidArgumentError("slurm.time_limit must not be negative");
  }
  if (config.nodes() > gang.world_size()) {
    return absl::InvalidArgumentError(absl::StrCat("slurm.nodes (", config.nodes(),
                                                   ") is more than the gang's ", gang.world_size(),
                                                   " ranks"));
  }
  if (config.nodes() > 0 && config.tasks_per_node() > 0 &&
      int64_t{config.nodes()} * config.tasks_per_node() != gang.world_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "slurm.nodes x slurm.tasks_per_node is ", config.nodes(), " x ", config.tasks_per_node(),
        " tasks, but the gang has ", gang.world_size(), " ranks (dp x cp)"));
  }
  return absl::OkStatus();
}

std::string BatchScript(const v1::SlurmLauncher& config, const GangSpec& gang) {
  const std::string log_dir = ShellQuote(gang.log_dir);
  std::vector<std::string> srun = {"srun", absl::StrCat("--ntasks=", gang.world_size())};
  if (config.nodes() > 0) srun.push_back(absl::StrCat("--nodes=", config.nodes()));
  if (config.tasks_per_node() > 0) {
    srun.push_back(absl::StrCat("--ntasks-per-node=", config.tasks_per_node()));
  }
  srun.insert(srun.end(), {"--kill-on-bad-exit=1", "--input=none",
                           absl::StrCat("--output=", log_dir, "/rank-%t.log")});

  std::vector<std::string> worker;
  for (const std::string& arg : WorkerArgs(gang)) worker.push_back(ShellQuote(arg));

  std::string comment =
      absl::StrCat("# prolong gang: run ", gang.run_id, ", attempt ", gang.attempt, ", stage ",
                   gang.stage_index, " (", gang.stage, "), ", gang.world_size(), " ranks.");
  absl::StrReplaceAll({{"\n", " "}, {"\r", " "}}, &comment);
  return absl::StrCat(
      "#!/bin/sh\n", comment, "\n",
      "# Every rank runs under a shell that records the first rank to fail (set -C: only the\n"
      "# first creates the file), and waits for its trainer through SIGTERM so that Slurm keeps\n"
      "# tracking the trainer while it shuts down. The job then exits with that rank's code,\n"
      "# not srun's, which may be that of a rank stopped after the failure.\n",
      "failed=", log_dir, "/slurm-\"$SLURM_JOB_ID\".failed\n", absl::StrJoin(srun, " "),
      " \\\n  /bin/sh -c 'trap : TERM INT\n"
      "\"$@\"\n"
      "code=$?\n"
      "if [ \"$code\" -ne 0 ]; then (set -C; echo \"$SLURM_PROCID $code\" >\"$0\") 2>/dev/null; "
      "fi\n"
      "exit \"$code\"' \"$failed\" \\\n  ",
      absl::StrJoin(worker, " \\\n  "), "\n",
      "code=$?\n"
      "if [ -s \"$failed\" ]; then\n"
      "  read -r rank code <\"$failed\"\n"
      "  echo \"prolong: rank $rank exited with code $code\" >&2\n"
      "fi\n"
      "echo \"$code\" >",
      log_dir, "/slurm-\"$SLURM_JOB_ID\".exit\n", "exit \"$code\"\n");
}

std::vector<std::string> SbatchArgs(const v1::SlurmLauncher& config, const GangSpec& gang,
                                    const std::string& script_path) {
  std::vector<std::string> args = {
      "--parsable",
      // The scheduler decides whether to try again, not Slurm.
      "--no-requeue",
      absl::StrCat("--job-name=prolong-", gang.run_id, "-a", gang.attempt),
      absl::StrCat("--output=", gang.log_dir, "/slurm-%j.log"),
      absl::StrCat("--ntasks=", gang.world_size()),
  };
  if (config.nodes() > 0) args.push_back(absl::StrCat("--nodes=", config.nodes()));
  if (config.tasks_per_node() > 0) {
    args.push_back(absl::StrCat("--ntasks-per-node=", config.tasks_per_node()));
  }
  if (config.gpus_per_node() > 0) {
    args.push_back(absl::StrCat("--gpus-per-node=", config.gpus_per_node()));
  }
  if (!config.partition().empty()) {
    args.push_back(absl::StrCat("--partition=", config.partition()));
  }
  if (!config.account().empty()) args.push_back(absl::StrCat("--account=", config.account()));
  if (config.has_time_limit() &&
      (config.time_limit().seconds() > 0 || config.time_limit().nanos() > 0)) {
    args.push_back(absl::StrCat("--time=", SlurmTime(config.time_limit())));
  }
  args.insert(args.end(), config.extra_args().begin(), config.extra_args().end());
  args.push_back(script_path);
  return args;
}

// ---------------------------------------------------------------------------------------------
// The job's state.

struct JobInfo {
  bool known = true;  // false once Slurm has forgotten the job
  std::string state;  // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED...
  int exit_code = 0;
  int signal = 0;
};

bool IsEnded(absl::string_view state) {
  for (absl::string_view ended :
       {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
        "DEADLINE", "OUT_OF_MEMORY", "REVOKED", "SPECIAL_EXIT"}) {
    if (state == ended) return true;
  }
  return false;
}

// "2:0" -> code 2, signal 0.
void ParseExitCode(absl::string_view text, JobInfo& info) {
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(text, ':');
  if (!absl::SimpleAtoi(parts.first, &info.exit_code)) info.exit_code = 0;
  if (!absl::SimpleAtoi(parts.second, &info.signal)) info.signal = 0;
}

// The leading word of a state ("CANCELLED by 0" in sacct, "CANCELLED+" in some listings).
std::string StateWord(absl::string_view text) {
  size_t end = 0;
  while (end < text.size() && (absl::ascii_isupper(text[end]) || text[end] == '_')) ++end;
  return std::string(text.substr(0, end));
}

absl::StatusOr<JobInfo> QueryJob(int64_t job_id, const SlurmLauncherOptions& options) {
  const std::string id = absl::StrCat(job_id);
  ASSIGN_OR_RETURN(CommandResult shown, RunCommand(options.scontrol, {"show", "job", id}, options));
  if (shown.exit_code == 0) {
    JobInfo info;
    bool first_line = true;
    for (absl::string_view line : absl::StrSplit(shown.out, '\n')) {
      // The first line holds the free-text job name.
      if (std::exchange(first_line, false)) continue;
      for (absl::string_view field : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        if (absl::ConsumePrefix(&field, "JobState=") && info.state.empty()) {
          info.state = StateWord(field);
        } else if (absl::ConsumePrefix(&field, "ExitCode=")) {
          ParseExitCode(field, info);
        }
      }
    }
    if (info.state.empty()) {
      return absl::InternalError(absl::StrCat(
          "scontrol show job ", id, ": no JobState in: ", absl::StripAsciiWhitespace(shown.out)));
    }
    return info;
  }
  if (!absl::StrContains(shown.err, "Invalid job id")) {
    return absl::UnavailableError(CommandFailure(options.scontrol, shown));
  }
  // slurmctld forgets a job MinJobAge (300 s by default) after it ends; the accounting
  // database, where there is one, remembers.
  JobInfo info;
  info.known = false;
  absl::StatusOr<CommandResult> accounted =
      RunCommand(options.sacct, {"-n", "-P", "-X", "-j", id, "-o", "State,ExitCode"}, options);
  if (accounted.ok() && accounted->exit_code == 0) {
    for (absl::string_view line : absl::StrSplit(accounted->out, '\n', absl::SkipWhitespace())) {
      std::pair<absl::string_view, absl::string_view> fields = absl::StrSplit(line, '|');
      info.state = StateWord(fields.first);
      ParseExitCode(fields.second, info);
      info.known = !info.state.empty();
      break;
    }
  }
  return info;
}

// How a rank or the job ended, in GangStatus terms.
GangStatus Failure(std::string reason, bool retryable) {
  GangStatus status;
  status.state = GangState::kFailed;
  status.reason = std::move(reason);
  status.retryable = retryable;
  return status;
}

std::string ExitWords(int code) {
  if (code > 128) return absl::StrCat("was killed by signal ", code - 128);
  return absl::StrCat("exited with code ", code);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

SlurmGang::SlurmGang(int64_t job_id, std::string log_dir, SlurmLauncherOptions options)
    : job_id_(job_id), log_dir_(std::move(log_dir)), options_(std::move(options)) {}

std::string SlurmGang::Describe() const { return absl::StrCat("Slurm job ", job_id_); }

std::string SlurmGang::JobId() const { return absl::StrCat(job_id_); }

GangStatus SlurmGang::Poll() {
  if (final_.has_value()) return *final_;
  const absl::Time now = absl::Now();
  if (now < next_query_) return GangStatus{};
  next_query_ = now + options_.query_interval;
  absl::StatusOr<JobInfo> info = QueryJob(job_id_, options_);
  if (!info.ok()) {
    PROLONG_LOG(WARNING) << Describe()
                         << ": cannot see its state, taking it as running: " << info.status();
    return GangStatus{};
  }
  const std::string job = Describe();
  const std::string log = absl::StrCat(log_dir_, "/slurm-", job_id_, ".log");

  // The first failed rank, as the job's script recorded it.
  auto rank_failure = [&]() -> std::optional<GangStatus> {
    const std::string text =
        ReadFile(absl::StrCat(log_dir_, "/slurm-", job_id_, ".failed")).value_or("");
    int rank = 0;
    int code = 0;
    const std::vector<absl::string_view> words = absl::StrSplit(text, ' ', absl::SkipWhitespace());
    if (words.size() != 2 || !absl::SimpleAtoi(words[0], &rank) ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(words[1]), &code) || code == 0) {
      return std::nullopt;
    }
    return Failure(absl::StrCat("rank ", rank, " ", ExitWords(code), " (", job, ")"),
                   IsRetryableExitCode(code));
  };

  if (!info->known) {
    // Forgotten by Slurm and not accounted: the script's own record is all there is.
    absl::StatusOr<std::string> exit_text =
        ReadFile(absl::StrCat(log_dir_, "/slurm-", job_id_, ".exit"));
    int code = 0;
    if (!exit_text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*exit_text), &code)) {
      final_ = Failure(absl::StrCat(job, " is no longer known to Slurm and left no exit code in ",
                                    log_dir_, " (cancelled, timed out or lost with its node?)"),
                       /*retryable=*/true);
    } else if (code == 0) {
      final_ = GangStatus{GangState::kSucceeded, "", true};
    } else {
      final_ = rank_failure().value_or(
          Failure(absl::StrCat(job, "'s script ", ExitWords(code), "; see ", log),
                  IsRetryableExitCode(code)));
    }
    return *final_;
  }

  if (!IsEnded(info->state)) return GangStatus{};
  if (info->state == "COMPLETED" && info->exit_code == 0 && info->signal == 0) {
    final_ = GangStatus{GangState::kSucceeded, "", true};
  } else if (info->state == "FAILED" || info->state == "COMPLETED") {
    if (std::optional<GangStatus> failure = rank_failure()) {
      final_ = *failure;
    } else if (info->signal != 0) {
      final_ = Failure(
          absl::StrCat(job, "'s script was killed by signal ", info->signal, "; see ", log), true);
    } else {
      final_ = Failure(absl::StrCat(job, "'s script ", ExitWords(info->exit_code), "; see ", log),
                       IsRetryableExitCode(info->exit_code));
    }
  } else if (info->state == "CANCELLED") {
    final_ = Failure(absl::StrCat(job, " was cancelled"), true);
  } else if (info->state == "TIMEOUT") {
    final_ = Failure(absl::StrCat(job, " reached its time limit"), true);
  } else {
    final_ = Failure(absl::StrCat(job, " ended in state ", info->state), true);
  }
  return *final_;
}

void SlurmGang::Stop() {
  if (final_.has_value()) return;
  next_query_ = absl::InfinitePast();  // the next Poll asks again: the job is ending
  if (!cancelled_) {
    absl::StatusOr<CommandResult> cancelled =
        RunCommand(options_.scancel, {absl::StrCat(job_id_)}, options_);
    if (!cancelled.ok()) {
      PROLONG_LOG(WARNING) << Describe() << ": " << cancelled.status();
    } else if (cancelled->exit_code != 0 &&
               !absl::StrContains(cancelled->err, "already completing or completed")) {
      PROLONG_LOG(WARNING) << Describe() << ": " << CommandFailure(options_.scancel, *cancelled);
    } else {
      cancelled_ = true;
    }
  }
  const absl::Time deadline = absl::Now() + options_.stop_timeout;
  std::string last_state;
  while (true) {
    absl::StatusOr<JobInfo> info = QueryJob(job_id_, options_);
    if (info.ok()) {
      if (!info->known || IsEnded(info->state)) return;
      last_state = info->state;
    }
    if (absl::Now() > deadline) break;
    absl::SleepFor(options_.stop_poll_interval);
  }
  PROLONG_LOG(WARNING) << Describe() << " has not ended "
                       << absl::FormatDuration(options_.stop_timeout) << " after scancel"
                       << (last_state.empty() ? "" : absl::StrCat(" (state ", last_state, ")"));
}

// ---------------------------------------------------------------------------------------------

SlurmLauncher::SlurmLauncher(v1::SlurmLauncher config, SlurmLauncherOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Gang>> SlurmLauncher::Launch(const GangSpec& gang) {
  RETURN_IF_ERROR(CheckGang(config_, gang));
  std::error_code error;
  std::filesystem::create_directories(gang.log_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("gang: log_dir ", gang.log_dir, ": ", error.message()));
  }
  const std::string script_path = absl::StrCat(gang.log_dir, "/gang.sbatch");
  RETURN_IF_ERROR(WriteFileAtomically(script_path, BatchScript(config_, gang)));

  ASSIGN_OR_RETURN(CommandResult submitted,
                   RunCommand(options_.sbatch, SbatchArgs(config_, gang, script_path), options_));
  if (submitted.exit_code != 0) {
    const std::string failure = CommandFailure(options_.sbatch, submitted);
    if (absl::StrContains(submitted.err, "Unable to contact slurm controller")) {
      return absl::UnavailableError(failure);
    }
    return absl::FailedPreconditionError(failure);
  }
  // --parsable prints "JOB" or "JOB;CLUSTER".
  const absl::string_view first_line = absl::StripAsciiWhitespace(
      absl::string_view(submitted.out).substr(0, submitted.out.find('\n')));
  int64_t job_id = 0;
  if (!absl::SimpleAtoi(first_line.substr(0, first_line.find(';')), &job_id) || job_id <= 0) {
    return absl::InternalError(absl::StrCat("sbatch: no job id in its output: ",
                                            absl::StripAsciiWhitespace(submitted.out)));
  }
  return std::make_unique<SlurmGang>(job_id, gang.log_dir, options_);
}

std::unique_ptr<SlurmGang> SlurmLauncher::Reattach(int64_t job_id,
                                                   const std::string& log_dir) const {
  return std::make_unique<SlurmGang>(job_id, log_dir, options_);
}

absl::StatusOr<std::unique_ptr<Gang>> SlurmLauncher::Reattach(const GangSpec& gang,
                                                              const std::string& job_id) {
  int64_t id = 0;
  if (!absl::SimpleAtoi(job_id, &id) || id <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("not a Slurm job id: \"", job_id, "\""));
  }
  return std::unique_ptr<Gang>(Reattach(id, gang.log_dir));
}

}  // namespace prolong::scheduler
