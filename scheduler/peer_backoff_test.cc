#include "scheduler/peer_backoff.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(PeerBackoffTest, AMissingPeerIsNotAskedAgainUntilTheHoldHasPassed) {
  PeerBackoff backoff(absl::Seconds(2));
  EXPECT_OK(backoff.Check("a:1", kStart));
  const absl::Status refused = absl::UnavailableError("failed to connect to all addresses");
  backoff.Record("a:1", refused, kStart);
  EXPECT_EQ(backoff.Check("a:1", kStart + absl::Seconds(1)), refused);
  EXPECT_EQ(backoff.Check("a:1", kStart + absl::Milliseconds(1999)), refused);
  EXPECT_OK(backoff.Check("a:1", kStart + absl::Seconds(2)));
  // That caller tries; the others wait for its outcome (or another hold).
  EXPECT_EQ(backoff.Check("a:1", kStart + absl::Seconds(2)), refused);
  EXPECT_EQ(backoff.Check("a:1", kStart + absl::Milliseconds(3999)), refused);
  EXPECT_OK(backoff.Check("a:1", kStart + absl::Seconds(4)));
  // Another peer is not held back by this one.
  EXPECT_OK(backoff.Check("b:1", kStart + absl::Seconds(1)));
  // A hung peer is held back the same way.
  const absl::Status hung = absl::DeadlineExceededError("Deadline Exceeded");
  backoff.Record("b:1", hung, kStart);
  EXPECT_EQ(backoff.Check("b:1", kStart + absl::Seconds(1)), hung);
}

TEST(PeerBackoffTest, APeerThatAnswersIsAskedAtOnce) {
  PeerBackoff backoff(absl::Seconds(2));
  backoff.Record("a:1", absl::UnavailableError("down"), kStart);
  // A call that got through in the meantime (the peer is back).
  backoff.Record("a:1", absl::OkStatus(), kStart + absl::Milliseconds(10));
  EXPECT_OK(backoff.Check("a:1", kStart + absl::Milliseconds(20)));
  // Errors that are the request's, not the peer's absence, hold nothing back.
  backoff.Record("a:1", absl::InvalidArgumentError("stage.seq_len: 0"), kStart);
  backoff.Record("a:1", absl::ResourceExhaustedError("busy"), kStart);
  EXPECT_OK(backoff.Check("a:1", kStart + absl::Milliseconds(20)));
}

TEST(PeerBackoffTest, FailuresPastTheirHoldAreForgotten) {
  PeerBackoff backoff(absl::Seconds(2));
  for (int k = 0; k < 1000; ++k) {
    backoff.Record(absl::StrCat("peer-", k, ":1"), absl::UnavailableError("down"),
                   kStart + absl::Seconds(3 * k));
  }
  // Each new failure pruned the ones before it: only the last peer is held back.
  EXPECT_EQ(backoff.remembered(), 1u);
}

}  // namespace
}  // namespace prolong::scheduler
