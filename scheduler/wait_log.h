// Says in the log why runs wait to start: a line per reason per interval, not one per run. With
// a datamixer down, every pending run waits for the same reason, and a line for each (thousands,
// again at each outage) hides the rest of the log and costs every submission a write. Each run
// still says why it waits (`run get`); the log says it once, then how many more runs did.
//
// Thread-safety: every method may be called from any thread.
#ifndef PROLONG_SCHEDULER_WAIT_LOG_H_
#define PROLONG_SCHEDULER_WAIT_LOG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prolong::scheduler {

class WaitLog {
 public:
  explicit WaitLog(absl::Duration interval = absl::Seconds(10)) : interval_(interval) {}

  // The line to log for a run found waiting for `reason` at `now`: none if a line for that
  // reason was written within the interval (the run is counted instead); otherwise one naming
  // the run and, if any, how many runs were counted since the last line.
  std::optional<std::string> Line(absl::string_view run_id, absl::string_view reason,
                                  absl::Time now);
  // Logs Line's line, if any, as a warning.
  void Waiting(absl::string_view run_id, absl::string_view reason, absl::Time now);

 private:
  struct Reason {
    absl::Time logged;
    int64_t unlogged = 0;  // runs counted since
  };
  const absl::Duration interval_;
  absl::Mutex mu_;
  // Reasons logged within the interval, and those with runs counted since their line.
  absl::flat_hash_map<std::string, Reason> reasons_ ABSL_GUARDED_BY(mu_);
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_WAIT_LOG_H_
