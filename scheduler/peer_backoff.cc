#include "scheduler/peer_backoff.h"

#include <iterator>

namespace prolong::scheduler {
namespace {

bool MeansPeerMissing(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

absl::Status PeerBackoff::Check(const std::string& address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  const auto it = failures_.find(address);
  if (it == failures_.end()) return absl::OkStatus();
  if (now >= it->second.until) {
    it->second.until = now + hold_;  // this caller's call is the next try
    return absl::OkStatus();
  }
  return it->second.status;
}

void PeerBackoff::Record(const std::string& address, const absl::Status& status, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!MeansPeerMissing(status)) {
    failures_.erase(address);
    return;
  }
  // Specs may name any number of peers over time: the failures past their hold go.
  for (auto it = failures_.begin(); it != failures_.end();) {
    it = now >= it->second.until ? failures_.erase(it) : std::next(it);
  }
  failures_[address] = {status, now + hold_};
}

size_t PeerBackoff::remembered() const {
  absl::MutexLock lock(&mu_);
  return failures_.size();
}

}  // namespace prolong::scheduler
