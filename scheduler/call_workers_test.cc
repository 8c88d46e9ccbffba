#include "scheduler/call_workers.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

TEST(CallWorkersTest, OneThreadRunsTheWorkInTheOrderItCame) {
  absl::Mutex mu;
  std::vector<int> order;
  {
    CallWorkers workers(1, "test-workers");
    for (int k = 0; k < 100; ++k) {
      workers.Add([&, k] {
        absl::MutexLock lock(&mu);
        order.push_back(k);
      });
    }
  }
  ASSERT_EQ(order.size(), 100u);
  for (int k = 0; k < 100; ++k) EXPECT_EQ(order[k], k);
}

TEST(CallWorkersTest, RunsAsManyAtOnceAsItHasThreadsAndNoMore) {
  CallWorkers workers(3, "test-workers");
  absl::BlockingCounter three_started(3);
  absl::Notification release;
  std::atomic<bool> fourth_started{false};
  for (int k = 0; k < 3; ++k) {
    workers.Add([&] {
      three_started.DecrementCount();
      release.WaitForNotification();
    });
  }
  workers.Add([&] { fourth_started = true; });
  three_started.Wait();  // all three blocking at once: 3 threads
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(fourth_started);  // no fourth thread
  release.Notify();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!fourth_started && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(fourth_started);
}

TEST(CallWorkersTest, DestructionRunsWhatIsQueuedFirst) {
  std::atomic<int> ran{0};
  absl::Notification release;
  auto workers = std::make_unique<CallWorkers>(1, "test-workers");
  workers->Add([&] {
    release.WaitForNotification();
    ++ran;
  });
  for (int k = 0; k < 10; ++k) workers->Add([&] { ++ran; });
  release.Notify();
  workers.reset();
  EXPECT_EQ(ran, 11);
}

}  // namespace
}  // namespace prolong::scheduler
