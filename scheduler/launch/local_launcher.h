// The embedded default: a gang's ranks as child processes of the scheduler on this machine
// (process_gang.h), each rank's output in its log file under the gang's log_dir. All ranks
// start at once; they find each other through the scheduler (rank 0 registers the store it
// hosts). A rank that fails has the others killed at once.
#ifndef PROLONG_SCHEDULER_LAUNCH_LOCAL_LAUNCHER_H_
#define PROLONG_SCHEDULER_LAUNCH_LOCAL_LAUNCHER_H_

#include <memory>

#include "scheduler/launch/launcher.h"

namespace prolong::scheduler {

class LocalLauncher : public Launcher {
 public:
  // Call Launch from a thread that outlives the gang: its ranks die with that thread.
  absl::StatusOr<std::unique_ptr<Gang>> Launch(const GangSpec& gang) override;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_LOCAL_LAUNCHER_H_
