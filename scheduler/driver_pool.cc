#include "scheduler/driver_pool.h"

#include <pthread.h>

namespace prolong::scheduler {

DriverPool::DriverPool(int max_threads) : max_threads_(max_threads < 1 ? 1 : max_threads) {}

DriverPool::~DriverPool() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    threads.swap(threads_);
    timer_.SignalAll();
    work_.SignalAll();
  }
  for (std::thread& thread : threads) thread.join();
  std::map<SteppedTask*, std::unique_ptr<SteppedTask>> owned;
  {
    absl::MutexLock lock(&mu_);
    owned.swap(owned_);
  }
}

void DriverPool::Add(std::unique_ptr<SteppedTask> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  SteppedTask* stepped = task.get();
  owned_.emplace(stepped, std::move(task));
  const absl::Time now = absl::Now();
  due_.emplace(now, stepped);
  GrowIfBusy();
  Wake(now);
}

int DriverPool::threads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

int DriverPool::tasks() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(owned_.size());
}

void DriverPool::GrowIfBusy() {
  if (idle_ > 0 || stopping_ || static_cast<int>(threads_.size()) >= max_threads_) return;
  ++idle_;  // from its start: a burst of due tasks starts one thread, not one each
  threads_.emplace_back([this] { Work(); });
}

void DriverPool::Wake(absl::Time due) {
  if (!timer_taken_) {
    work_.Signal();  // an idle thread takes it, or waits for it
  } else if (due < timer_deadline_) {
    timer_.Signal();  // sooner than the timer's thread waits for
  }
}

void DriverPool::Work() {
  pthread_setname_np(pthread_self(), "run-drivers");
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!stopping_ && (due_.empty() || due_.begin()->first > absl::Now())) {
      if (!timer_taken_ && !due_.empty()) {
        timer_taken_ = true;
        timer_deadline_ = due_.begin()->first;
        timer_.WaitWithDeadline(&mu_, timer_deadline_);
        timer_taken_ = false;
      } else {
        work_.Wait(&mu_);
      }
    }
    --idle_;
    if (stopping_) return;
    SteppedTask* task = due_.begin()->second;
    due_.erase(due_.begin());
    GrowIfBusy();
    if (!due_.empty()) Wake(due_.begin()->first);  // the next one's wait

    mu_.Unlock();
    const absl::Time next = task->Step();
    mu_.Lock();

    if (next == absl::InfiniteFuture()) {
      std::unique_ptr<SteppedTask> done = std::move(owned_.extract(task).mapped());
      mu_.Unlock();
      done.reset();  // outside the lock: a task may take its time to end
      mu_.Lock();
    } else {
      due_.emplace(next, task);
      Wake(next);
    }
    ++idle_;
  }
}

}  // namespace prolong::scheduler
