// A cap on the calls of one kind a server holds open at once (streams: each holds a thread and
// buffers), so that many clients get RESOURCE_EXHAUSTED, which they retry with backoff, rather
// than the server growing without bound.
//
// Thread-safety: Take may be called from many threads at once.
#ifndef PROLONG_COMMON_CALL_SLOTS_H_
#define PROLONG_COMMON_CALL_SLOTS_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace prolong {

class CallSlots {
 public:
  // `what` names the calls and the flag that sets `capacity`, for the error:
  // "StreamBatches streams (--max-streams)".
  CallSlots(int capacity, std::string what) : capacity_(capacity), what_(std::move(what)) {}

  // Held for the length of a call; the slot is free again when it goes.
  using Slot = std::unique_ptr<CallSlots, void (*)(CallSlots*)>;

  // A slot, or RESOURCE_EXHAUSTED when all `capacity` are taken.
  absl::StatusOr<Slot> Take() {
    if (taken_.fetch_add(1) >= capacity_) {
      taken_.fetch_sub(1);
      return absl::ResourceExhaustedError(absl::StrCat(
          "already ", capacity_, " ", what_, " open, the most this server holds; retry later"));
    }
    return Slot(this, [](CallSlots* slots) { slots->taken_.fetch_sub(1); });
  }

 private:
  const int capacity_;
  const std::string what_;
  std::atomic<int> taken_{0};
};

}  // namespace prolong

#endif  // PROLONG_COMMON_CALL_SLOTS_H_
