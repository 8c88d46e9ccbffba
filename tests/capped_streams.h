// For tests of a server's cap on open streams: a call the cap refuses, and a client retrying
// one until a slot frees.
#ifndef PROLONG_TESTS_CAPPED_STREAMS_H_
#define PROLONG_TESTS_CAPPED_STREAMS_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace prolong::testing {

// Opens a server stream with `open(context)` and reads it to its end: the status it ended with,
// or UNKNOWN "the stream sent a message" if it sent any (a refused call sends none).
template <typename Message, typename Open>
grpc::Status StatusWithoutMessages(Open open) {
  grpc::ClientContext context;
  auto reader = open(context);
  Message message;
  bool sent = false;
  while (reader->Read(&message)) sent = true;
  const grpc::Status status = reader->Finish();
  return sent ? grpc::Status(grpc::StatusCode::UNKNOWN, "the stream sent a message") : status;
}

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

#endif  // PROLONG_TESTS_CAPPED_STREAMS_H_
