#include "scheduler/batch_worker.h"

#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

TEST(BatchWorkerTest, WhatCameWhileABatchWasHandledIsTheNextBatchInOrder) {
  absl::Notification first_taken, go_on;
  absl::Mutex mu;
  std::vector<std::vector<int>> batches;
  {
    BatchWorker<int> worker("test-batches", [&](std::vector<int>& batch) {
      {
        absl::MutexLock lock(&mu);
        batches.push_back(batch);
      }
      if (!first_taken.HasBeenNotified()) {
        first_taken.Notify();
        go_on.WaitForNotification();
      }
    });
    worker.Add(0);
    first_taken.WaitForNotification();
    for (int i = 1; i <= 5; ++i) worker.Add(i);
    go_on.Notify();
  }
  absl::MutexLock lock(&mu);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0], std::vector<int>({0}));
  EXPECT_EQ(batches[1], std::vector<int>({1, 2, 3, 4, 5}));
}

TEST(BatchWorkerTest, DestructionHandlesWhatIsQueuedFirst) {
  absl::Notification taken, release;
  int handled = 0;
  // Lets the first batch end only once destruction has begun (with 2 and 3 queued).
  std::thread releaser([&] {
    taken.WaitForNotification();
    absl::SleepFor(absl::Milliseconds(200));
    release.Notify();
  });
  {
    BatchWorker<int> worker("test-batches", [&](std::vector<int>& batch) {
      handled += static_cast<int>(batch.size());
      if (!taken.HasBeenNotified()) {
        taken.Notify();
        release.WaitForNotification();
      }
    });
    worker.Add(1);
    taken.WaitForNotification();
    worker.Add(2);
    worker.Add(3);
  }
  releaser.join();
  EXPECT_EQ(handled, 3);
}

}  // namespace
}  // namespace prolong::scheduler
