#include "scheduler/launch/local_slurm.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_macros.h"

namespace prolong::scheduler {
namespace {

constexpr absl::Duration kClientTimeout = absl::Seconds(30);

// The daemons live in sbin, which a test's PATH may lack.
std::string FindTool(const std::string& name) {
  std::string path = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";
  if (const char* own = std::getenv("PATH"); own != nullptr) path = absl::StrCat(own, ":", path);
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Ports nothing listens on now (all held open together, so they differ).
absl::StatusOr<std::vector<int>> FreePorts(int count) {
  std::vector<int> sockets;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_ANY);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      status = absl::InternalError(absl::StrCat("free port: ", std::strerror(errno)));
    } else {
      ports.push_back(ntohs(address.sin_port));
    }
    if (fd >= 0) sockets.push_back(fd);
  }
  for (int fd : sockets) close(fd);
  if (!status.ok()) return status;
  return ports;
}

std::string ShortHostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  std::string host(name);
  return host.substr(0, host.find('.'));
}

bool Exited(testing::Subprocess& process) { return process.Wait(absl::ZeroDuration()).ok(); }

}  // namespace

std::string LocalSlurm::UnavailableReason() {
  if (geteuid() != 0) return "a local Slurm cluster needs root (slurmd runs jobs as their users)";
  for (const char* tool : {"slurmctld", "slurmd", "munged", "mungekey", "sinfo", "squeue",
                           "scancel", "sbatch", "srun"}) {
    if (FindTool(tool).empty()) {
      return absl::StrCat(tool, " is not installed (Debian packages slurm-wlm and munge)");
    }
  }
  return "";
}

absl::StatusOr<std::unique_ptr<LocalSlurm>> LocalSlurm::Start() {
  if (std::string reason = UnavailableReason(); !reason.empty()) {
    return absl::FailedPreconditionError(reason);
  }
  auto slurm = absl::WrapUnique(new LocalSlurm());
  char pattern[] = "/tmp/prolong-slurm-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  slurm->dir_ = pattern;
  const std::string& dir = slurm->dir_;
  // munged wants the directories above its socket searchable by everyone.
  chmod(dir.c_str(), 0755);
  for (const char* sub : {"munge", "state", "spool", "log"}) {
    std::error_code error;
    std::filesystem::create_directories(absl::StrCat(dir, "/", sub), error);
    if (error) return absl::InternalError(absl::StrCat(dir, "/", sub, ": ", error.message()));
  }
  slurm->node_ = ShortHostname();
  slurm->cpus_ = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));

  // Its own munged on its own socket: no system daemon, /run/munge or /etc/munge involved.
  const std::string munge_key = absl::StrCat(dir, "/munge/munge.key");
  const std::string munge_socket = absl::StrCat(dir, "/munge/munge.socket");
  ASSIGN_OR_RETURN(
      testing::RunResult keyed,
      testing::Run({FindTool("mungekey"), "--create", "--keyfile=" + munge_key}, kClientTimeout));
  if (keyed.exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("mungekey: exit ", keyed.exit_code, ": ", keyed.stderr_text));
  }
  ASSIGN_OR_RETURN(slurm->munged_,
                   testing::Subprocess::Start(
                       {FindTool("munged"), "--foreground", "--force", "--socket=" + munge_socket,
                        "--key-file=" + munge_key, "--log-file=" + dir + "/log/munged.log",
                        "--pid-file=" + dir + "/munge/munged.pid",
                        "--seed-file=" + dir + "/munge/munged.seed"}));
  for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
       access(munge_socket.c_str(), F_OK) != 0;) {
    if (Exited(*slurm->munged_) || absl::Now() > deadline) {
      return absl::InternalError(absl::StrCat("munged did not start: ", slurm->Logs()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }

  ASSIGN_OR_RETURN(std::vector<int> ports, FreePorts(2));
  const std::string& node = slurm->node_;
  slurm->conf_path_ = absl::StrCat(dir, "/slurm.conf");
  RETURN_IF_ERROR(WriteFileAtomically(
      slurm->conf_path_,
      absl::StrCat("ClusterName=prolongtest\n",
                   // Addresses given, so that nothing depends on this host's name resolving.
                   "SlurmctldHost=", node, "(127.0.0.1)\n",  //
                   "SlurmctldPort=", ports[0], "\n",         //
                   "SlurmdPort=", ports[1], "\n",            //
                   "SlurmUser=root\n", "SlurmdUser=root\n", "AuthType=auth/munge\n",
                   "CredType=cred/munge\n", "AuthInfo=socket=", munge_socket, "\n",  //
                   "StateSaveLocation=", dir, "/state\n",                            //
                   "SlurmdSpoolDir=", dir, "/spool\n",                               //
                   "SlurmctldPidFile=", dir, "/slurmctld.pid\n", "SlurmdPidFile=", dir,
                   "/slurmd.pid\n", "SlurmctldLogFile=", dir, "/log/slurmctld.log\n",
                   "SlurmdLogFile=", dir, "/log/slurmd.log\n",
                   // No cgroups here: processes are tracked by parentage, tasks are not bound.
                   "ProctrackType=proctrack/linuxproc\n", "TaskPlugin=task/none\n",
                   "SelectType=select/cons_tres\n", "SelectTypeParameters=CR_CPU\n",
                   "SchedulerType=sched/builtin\n", "MpiDefault=none\n", "ReturnToService=2\n",
                   "JobAcctGatherType=jobacct_gather/none\n",
                   "AccountingStorageType=accounting_storage/none\n", "JobCompType=jobcomp/none\n",
                   "InactiveLimit=0\n",
                   // Short, so that a cancelled job's processes get SIGKILL soon after SIGTERM.
                   "KillWait=2\n", "MinJobAge=300\n", "NodeName=", node,
                   " NodeAddr=127.0.0.1 CPUs=", slurm->cpus_, " State=UNKNOWN\n",
                   "PartitionName=", slurm->partition_, " Nodes=", node,
                   " Default=YES MaxTime=INFINITE State=UP\n")));

  ASSIGN_OR_RETURN(slurm->slurmctld_, testing::Subprocess::Start(
                                          {FindTool("slurmctld"), "-D", "-f", slurm->conf_path_}));
  ASSIGN_OR_RETURN(slurm->slurmd_, testing::Subprocess::Start({FindTool("slurmd"), "-D", "-N", node,
                                                               "-f", slurm->conf_path_}));
  std::string state;
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);;) {
    absl::StatusOr<testing::RunResult> shown = slurm->Client({"sinfo", "-h", "-o", "%t"});
    if (shown.ok() && shown->exit_code == 0) {
      state = std::string(absl::StripAsciiWhitespace(shown->stdout_text));
      if (state == "idle") break;
    }
    if (Exited(*slurm->slurmctld_) || Exited(*slurm->slurmd_) || absl::Now() > deadline) {
      return absl::InternalError(
          absl::StrCat("the node did not become idle (state \"", state, "\"): ", slurm->Logs()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return slurm;
}

LocalSlurm::~LocalSlurm() {
  if (slurmctld_ != nullptr && slurmd_ != nullptr) {
    // Job steps run under slurmstepd, which outlives slurmd: end them through Slurm first.
    absl::StatusOr<testing::RunResult> jobs = Client({"squeue", "-h", "-o", "%i"});
    if (jobs.ok() && jobs->exit_code == 0) {
      std::vector<std::string> cancel = {"scancel"};
      for (absl::string_view id : absl::StrSplit(jobs->stdout_text, '\n', absl::SkipWhitespace())) {
        cancel.emplace_back(absl::StripAsciiWhitespace(id));
      }
      if (cancel.size() > 1) (void)Client(cancel);
      for (const absl::Time deadline = absl::Now() + absl::Seconds(30); absl::Now() < deadline;
           absl::SleepFor(absl::Milliseconds(100))) {
        jobs = Client({"squeue", "-h", "-o", "%i"});
        if (!jobs.ok() || jobs->exit_code != 0 ||
            absl::StripAsciiWhitespace(jobs->stdout_text).empty()) {
          break;
        }
      }
    }
  }
  for (std::unique_ptr<testing::Subprocess>* daemon : {&slurmd_, &slurmctld_, &munged_}) {
    if (*daemon == nullptr) continue;
    (*daemon)->Signal(SIGTERM);
    (void)(*daemon)->Wait(absl::Seconds(10));
    daemon->reset();  // SIGKILL if it is still there
  }
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::map<std::string, std::string> LocalSlurm::env() const { return {{"SLURM_CONF", conf_path_}}; }

absl::StatusOr<testing::RunResult> LocalSlurm::Client(const std::vector<std::string>& argv) const {
  std::vector<std::string> command = {"/usr/bin/env", "SLURM_CONF=" + conf_path_,
                                      FindTool(argv[0])};
  command.insert(command.end(), argv.begin() + 1, argv.end());
  return testing::Run(command, kClientTimeout);
}

std::string LocalSlurm::Logs() const {
  std::string logs;
  for (const char* name : {"munged.log", "slurmctld.log", "slurmd.log"}) {
    absl::StatusOr<std::string> text = ReadFile(absl::StrCat(dir_, "/log/", name));
    if (text.ok()) absl::StrAppend(&logs, "\n--- ", name, ":\n", *text);
  }
  for (const auto& [name, daemon] :
       {std::pair<const char*, const testing::Subprocess*>{"munged", munged_.get()},
        {"slurmctld", slurmctld_.get()},
        {"slurmd", slurmd_.get()}}) {
    if (daemon != nullptr) absl::StrAppend(&logs, "\n--- ", name, " stderr:\n", daemon->Stderr());
  }
  return logs;
}

}  // namespace prolong::scheduler
