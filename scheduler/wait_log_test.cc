#include "scheduler/wait_log.h"

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);
constexpr char kMissing[] = "stages[0]: datamixer 127.0.0.1:1: connection refused";

TEST(WaitLogTest, RunsWaitingForOneReasonShareALinePerInterval) {
  WaitLog log(absl::Seconds(10));
  EXPECT_EQ(log.Line("a", kMissing, kStart),
            "run a: stages[0]: datamixer 127.0.0.1:1: connection refused; retrying every 2s");
  EXPECT_EQ(log.Line("b", kMissing, kStart + absl::Seconds(1)), std::nullopt);
  EXPECT_EQ(log.Line("c", kMissing, kStart + absl::Milliseconds(9999)), std::nullopt);
  // An interval after the last line, the next run is logged with the count of those that were
  // not.
  EXPECT_EQ(log.Line("d", kMissing, kStart + absl::Seconds(10)),
            "run d: stages[0]: datamixer 127.0.0.1:1: connection refused; retrying every 2s (2 "
            "more runs found waiting for this since the last such line)");
  EXPECT_EQ(log.Line("e", kMissing, kStart + absl::Seconds(11)), std::nullopt);
  EXPECT_EQ(log.Line("f", kMissing, kStart + absl::Seconds(20)),
            "run f: stages[0]: datamixer 127.0.0.1:1: connection refused; retrying every 2s (1 "
            "more run found waiting for this since the last such line)");
  // Nothing counted since: no count.
  EXPECT_EQ(log.Line("g", kMissing, kStart + absl::Seconds(40)),
            "run g: stages[0]: datamixer 127.0.0.1:1: connection refused; retrying every 2s");
}

TEST(WaitLogTest, EachReasonHasItsOwnLine) {
  WaitLog log(absl::Seconds(10));
  EXPECT_NE(log.Line("a", "reason one", kStart), std::nullopt);
  EXPECT_NE(log.Line("b", "reason two", kStart), std::nullopt);
  EXPECT_EQ(log.Line("c", "reason one", kStart), std::nullopt);
  EXPECT_EQ(log.Line("c", "reason two", kStart), std::nullopt);
  // A reason seen again after others came and went is still counted.
  EXPECT_NE(log.Line("d", "reason three", kStart + absl::Seconds(30)), std::nullopt);
  EXPECT_EQ(log.Line("e", "reason one", kStart + absl::Seconds(30)),
            "run e: reason one; retrying every 2s (1 more run found waiting for this since the "
            "last such line)");
}

}  // namespace
}  // namespace prolong::scheduler
