#include "common/bounded_queue.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

// Producers and consumers at once: every item arrives exactly once, its contents as written
// on the producer's thread (what ThreadSanitizer checks the queue's synchronization with), and
// the queue never holds more than its capacity.
TEST(BoundedQueueTest, EveryItemArrivesOnceAndTheQueueStaysBounded) {
  constexpr int kProducers = 4, kConsumers = 3, kItemsEach = 5000;
  constexpr size_t kCapacity = 8;
  BoundedQueue<std::unique_ptr<std::vector<int>>> queue(kCapacity);
  std::atomic<size_t> most_waiting{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&queue, p] {
      for (int i = 0; i < kItemsEach; ++i) {
        const int id = p * kItemsEach + i;
        ASSERT_TRUE(queue.Push(std::make_unique<std::vector<int>>(std::vector<int>{id, -id})));
      }
    });
  }
  std::vector<std::vector<int>> received(kConsumers);
  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      while (std::optional<std::unique_ptr<std::vector<int>>> item = queue.Pop()) {
        const std::vector<int>& values = **item;
        ASSERT_EQ(values.size(), 2u);
        ASSERT_EQ(values[1], -values[0]);
        received[c].push_back(values[0]);
        size_t seen = most_waiting.load();
        const size_t now = queue.size();
        while (now > seen && !most_waiting.compare_exchange_weak(seen, now)) {
        }
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  queue.Close();
  for (std::thread& consumer : consumers) consumer.join();

  std::vector<int> all;
  for (const std::vector<int>& part : received) all.insert(all.end(), part.begin(), part.end());
  std::sort(all.begin(), all.end());
  std::vector<int> expected(kProducers * kItemsEach);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
  EXPECT_LE(most_waiting.load(), kCapacity);
}

TEST(BoundedQueueTest, ClosedQueuesAreDrainedBeforePopEnds) {
  BoundedQueue<int> queue(4);
  ASSERT_TRUE(queue.Push(1));
  ASSERT_TRUE(queue.Push(2));
  queue.Close();
  EXPECT_EQ(queue.Pop(), 1);
  EXPECT_EQ(queue.Pop(), 2);
  EXPECT_EQ(queue.Pop(), std::nullopt);
}

// A producer blocked on a full queue and a consumer blocked on an empty one both return.
TEST(BoundedQueueTest, CancelWakesBlockedProducersAndConsumers) {
  BoundedQueue<int> full(1);
  ASSERT_TRUE(full.Push(0));
  BoundedQueue<int> empty(1);
  absl::Notification pushed, popped;
  bool push_result = true;
  std::optional<int> pop_result = 7;
  std::thread producer([&] {
    push_result = full.Push(1);
    pushed.Notify();
  });
  std::thread consumer([&] {
    pop_result = empty.Pop();
    popped.Notify();
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(pushed.HasBeenNotified());
  EXPECT_FALSE(popped.HasBeenNotified());
  full.Cancel();
  empty.Cancel();
  producer.join();
  consumer.join();
  EXPECT_FALSE(push_result);
  EXPECT_EQ(pop_result, std::nullopt);
  EXPECT_EQ(full.Pop(), std::nullopt);  // cancelled: what is left is dropped
}

TEST(BoundedQueueTest, PopForGivesUpAfterItsTimeoutAndTakesWhatArrives) {
  BoundedQueue<int> queue(2);
  bool timed_out = false;
  const absl::Time start = absl::Now();
  EXPECT_EQ(queue.PopFor(absl::Milliseconds(30), &timed_out), std::nullopt);
  EXPECT_TRUE(timed_out);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));

  std::thread producer([&queue] {
    absl::SleepFor(absl::Milliseconds(10));
    queue.Push(5);
  });
  EXPECT_EQ(queue.PopFor(absl::Seconds(30), &timed_out), 5);
  EXPECT_FALSE(timed_out);
  producer.join();
}

}  // namespace
}  // namespace prolong
