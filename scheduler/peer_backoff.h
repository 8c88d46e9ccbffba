// Remembers, per address, a call that found its peer missing (UNAVAILABLE: not listening,
// unreachable; DEADLINE_EXCEEDED: hung), for a while, so that the many callers of one peer (the
// drivers of every run pending on a datamixer that is down) ask it once per interval between
// them, not once each. Callers told to wait get the failure the last call got.
//
// Thread-safety: every method may be called from any thread.
#ifndef PROLONG_SCHEDULER_PEER_BACKOFF_H_
#define PROLONG_SCHEDULER_PEER_BACKOFF_H_

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prolong::scheduler {

class PeerBackoff {
 public:
  // A failure is remembered for `hold` after the call that got it.
  explicit PeerBackoff(absl::Duration hold) : hold_(hold) {}

  // OK: call `address`. Otherwise the failure of its last call, within `hold` of `now`. Once
  // the hold has passed, one caller is let through and the others are held back for another
  // `hold` or until that call's Record, so a peer that hangs gets one call per hold, not one
  // from every caller while the first waits.
  absl::Status Check(const std::string& address, absl::Time now);
  // The outcome of a call to `address` that ended at `now`.
  void Record(const std::string& address, const absl::Status& status, absl::Time now);
  // How many failures are kept (for tests).
  size_t remembered() const;

 private:
  struct Failure {
    absl::Status status;
    absl::Time until;
  };
  const absl::Duration hold_;
  mutable absl::Mutex mu_;
  // Only peers whose hold has not passed, and those not yet pruned by a later failure.
  std::map<std::string, Failure> failures_ ABSL_GUARDED_BY(mu_);
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_PEER_BACKOFF_H_
