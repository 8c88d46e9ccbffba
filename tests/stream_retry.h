// For tests of a server's cap on open streams: a client retrying a refused stream until a slot
// frees.
#ifndef PROLONG_TESTS_STREAM_RETRY_H_
#define PROLONG_TESTS_STREAM_RETRY_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"

namespace prolong::testing {

// Opens a server stream with `open(context)` every 100 ms, as a client retries a call answered
// RESOURCE_EXHAUSTED, until its first message arrives; whether one did within `timeout`.
template <typename Message, typename Open>
bool FirstMessageWithin(absl::Duration timeout, Open open) {
  for (const absl::Time deadline = absl::Now() + timeout; absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(100))) {
    grpc::ClientContext context;
    auto reader = open(context);
    Message message;
    const bool served = reader->Read(&message);
    context.TryCancel();
    reader->Finish();
    if (served) return true;
  }
  return false;
}

}  // namespace prolong::testing

#endif  // PROLONG_TESTS_STREAM_RETRY_H_
