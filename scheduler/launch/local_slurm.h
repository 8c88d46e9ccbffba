// A real one-node Slurm cluster for tests: its own munged, slurmctld and slurmd as child
// processes, on free ports, with every file under a fresh directory in /tmp (short, because
// munged's and slurmstepd's Unix sockets live there). The node is this host with its real CPU
// count, in one partition. Clients reach it through env() (SLURM_CONF).
//
// Needs root (slurmd starts jobs as their users) and Debian's slurm-wlm and munge.
//
// Thread-safety: not thread-safe.
#ifndef PROLONG_SCHEDULER_LAUNCH_LOCAL_SLURM_H_
#define PROLONG_SCHEDULER_LAUNCH_LOCAL_SLURM_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/subprocess.h"

namespace prolong::scheduler {

class LocalSlurm {
 public:
  // Why a cluster cannot start here ("" when it can): not root, or a program missing.
  static std::string UnavailableReason();

  // Starts the daemons and waits (up to 60 s) until the node is idle.
  static absl::StatusOr<std::unique_ptr<LocalSlurm>> Start();

  // Cancels every job and waits for them to end, stops the daemons and removes the directory.
  ~LocalSlurm();
  LocalSlurm(const LocalSlurm&) = delete;
  LocalSlurm& operator=(const LocalSlurm&) = delete;

  const std::string& conf_path() const { return conf_path_; }
  // {"SLURM_CONF": conf_path()}: the environment Slurm's clients need.
  std::map<std::string, std::string> env() const;
  // The one partition (the default).
  const std::string& partition() const { return partition_; }
  const std::string& node() const { return node_; }
  int cpus() const { return cpus_; }
  // The daemons' logs, for a failing test to print.
  std::string Logs() const;

 private:
  LocalSlurm() = default;
  absl::StatusOr<testing::RunResult> Client(const std::vector<std::string>& argv) const;

  std::string dir_;
  std::string conf_path_;
  std::string partition_ = "local";
  std::string node_;
  int cpus_ = 1;
  std::unique_ptr<testing::Subprocess> munged_;
  std::unique_ptr<testing::Subprocess> slurmctld_;
  std::unique_ptr<testing::Subprocess> slurmd_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_LOCAL_SLURM_H_
