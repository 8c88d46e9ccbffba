#include "scheduler/driver_pool.h"

#include <atomic>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace prolong::scheduler {
namespace {

// A task whose steps and end are the test's.
class Task : public SteppedTask {
 public:
  explicit Task(std::function<absl::Time()> step, std::function<void()> destroyed = nullptr)
      : step_(std::move(step)), destroyed_(std::move(destroyed)) {}
  ~Task() override {
    if (destroyed_) destroyed_();
  }
  absl::Time Step() override { return step_(); }

 private:
  std::function<absl::Time()> step_;
  std::function<void()> destroyed_;
};

// Waits up to 10 s for `condition`.
bool Eventually(const std::function<bool()>& condition) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(DriverPoolTest, StepsEachTaskWhenItAsksAndDestroysItWhenDone) {
  DriverPool pool;
  absl::Mutex mu;
  std::vector<absl::Time> steps;
  std::atomic<bool> destroyed{false};
  pool.Add(std::make_unique<Task>(
      [&] {
        absl::MutexLock lock(&mu);
        steps.push_back(absl::Now());
        return steps.size() < 4 ? absl::Now() + absl::Milliseconds(50) : absl::InfiniteFuture();
      },
      [&] { destroyed = true; }));
  ASSERT_TRUE(Eventually([&] { return destroyed.load(); }));
  absl::MutexLock lock(&mu);
  ASSERT_EQ(steps.size(), 4u);  // not stepped again once done
  for (size_t k = 1; k < steps.size(); ++k) {
    EXPECT_GE(steps[k] - steps[k - 1], absl::Milliseconds(50)) << "step " << k;
  }
  EXPECT_EQ(pool.tasks(), 0);
}

TEST(DriverPoolTest, NeverStepsOneTaskOnTwoThreadsAtOnce) {
  DriverPool pool(8);
  std::atomic<int> inside{0}, most_inside{0}, steps{0};
  std::atomic<bool> other_steps{true};
  // Another task that keeps every thread busy, so that the pool grows.
  pool.Add(std::make_unique<Task>([&] {
    absl::SleepFor(absl::Milliseconds(1));
    return other_steps ? absl::Now() : absl::InfiniteFuture();
  }));
  pool.Add(std::make_unique<Task>([&] {
    const int now_inside = ++inside;
    most_inside = std::max(most_inside.load(), now_inside);
    absl::SleepFor(absl::Microseconds(200));
    --inside;
    return ++steps < 200 ? absl::Now() : absl::InfiniteFuture();
  }));
  ASSERT_TRUE(Eventually([&] { return steps.load() == 200; }));
  other_steps = false;
  EXPECT_EQ(most_inside.load(), 1);
}

TEST(DriverPoolTest, ABlockedStepHoldsUpNoOtherTask) {
  DriverPool pool;
  absl::Notification release;
  std::atomic<int> other_steps{0};
  pool.Add(std::make_unique<Task>([&] {
    release.WaitForNotification();
    return absl::InfiniteFuture();
  }));
  pool.Add(std::make_unique<Task>([&] {
    ++other_steps;
    return absl::Now() + absl::Milliseconds(5);
  }));
  // Stepped again and again while the first task's step blocks.
  EXPECT_TRUE(Eventually([&] { return other_steps.load() >= 20; }));
  EXPECT_GE(pool.threads(), 2);
  release.Notify();
}

TEST(DriverPoolTest, StartsNoMoreThanMaxThreads) {
  DriverPool pool(/*max_threads=*/2);
  absl::Notification release;
  std::atomic<int> blocked{0};
  std::atomic<bool> third_stepped{false};
  for (int k = 0; k < 2; ++k) {
    pool.Add(std::make_unique<Task>([&] {
      ++blocked;
      release.WaitForNotification();
      return absl::InfiniteFuture();
    }));
  }
  ASSERT_TRUE(Eventually([&] { return blocked.load() == 2; }));
  pool.Add(std::make_unique<Task>([&] {
    third_stepped = true;
    return absl::InfiniteFuture();
  }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(third_stepped.load());  // waits for a thread
  EXPECT_EQ(pool.threads(), 2);
  release.Notify();
  EXPECT_TRUE(Eventually([&] { return third_stepped.load(); }));
}

TEST(DriverPoolTest, ManyWaitingTasksShareAFewThreads) {
  DriverPool pool;
  constexpr int kTasks = 200;
  std::atomic<int> steps{0};
  for (int k = 0; k < kTasks; ++k) {
    pool.Add(std::make_unique<Task>([&] {
      ++steps;
      return absl::Now() + absl::Milliseconds(100);
    }));
  }
  ASSERT_TRUE(Eventually([&] { return steps.load() >= 3 * kTasks; }));
  EXPECT_EQ(pool.tasks(), kTasks);
  EXPECT_LE(pool.threads(), 16);
}

TEST(DriverPoolTest, EndingWaitsForStepsUnderWayAndDestroysTheTasksLeft) {
  std::atomic<int> destroyed{0};
  std::atomic<bool> in_step{false}, step_finished{false};
  {
    DriverPool pool;
    pool.Add(
        std::make_unique<Task>([&] { return absl::Now() + absl::Hours(1); }, [&] { ++destroyed; }));
    pool.Add(std::make_unique<Task>(
        [&] {
          in_step = true;
          absl::SleepFor(absl::Milliseconds(100));
          step_finished = true;
          return absl::Now();
        },
        [&] { ++destroyed; }));
    ASSERT_TRUE(Eventually([&] { return in_step.load(); }));
  }
  EXPECT_TRUE(step_finished.load());
  EXPECT_EQ(destroyed.load(), 2);
}

}  // namespace
}  // namespace prolong::scheduler
