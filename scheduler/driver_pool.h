// Steps every run's driver on a few threads instead of a thread per run. A step is one look at
// a run (run_driver.h) that says when the run next wants one; the pool keeps the drivers in the
// order of those times and hands each due one to an idle thread. A step may block (a plan call
// to a slow datamixer, a Slurm command), so when the last idle thread takes a step the pool
// starts another, up to `max_threads`; beyond that, due steps wait their turn. A thread per run
// cost every submission a thread's start and every waiting run its own wake-ups.
//
// Threads end only with the pool: a local gang's processes are killed when the thread that
// started them ends (process_gang.h), so they must live as long as the scheduler.
//
// Thread-safety: Add may be called from any thread; a task is stepped by one thread at a time.
#ifndef PROLONG_SCHEDULER_DRIVER_POOL_H_
#define PROLONG_SCHEDULER_DRIVER_POOL_H_

#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prolong::scheduler {

// What the pool steps.
class SteppedTask {
 public:
  virtual ~SteppedTask() = default;
  // One step. When the next one is due, or absl::InfiniteFuture() when the task is done (the
  // pool then destroys it).
  virtual absl::Time Step() = 0;
};

class DriverPool {
 public:
  explicit DriverPool(int max_threads = 64);
  // Waits for the steps under way, then destroys every task not done (without stepping it).
  ~DriverPool();
  DriverPool(const DriverPool&) = delete;
  DriverPool& operator=(const DriverPool&) = delete;

  // Steps `task` now, then whenever it asks.
  void Add(std::unique_ptr<SteppedTask> task);

  int threads() const;
  // Tasks not done.
  int tasks() const;

 private:
  void Work();
  // Starts a thread if none is idle and the cap allows.
  void GrowIfBusy() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes the one idle thread that a task newly due at `due` concerns, if any.
  void Wake(absl::Time due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_threads_;
  mutable absl::Mutex mu_;
  // One idle thread waits on `timer_` until the first due time; the others wait on `work_`.
  // Waking one thread per new task, not all, keeps a burst of submissions from waking every
  // idle thread each time.
  absl::CondVar timer_;
  absl::CondVar work_;
  bool timer_taken_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time timer_deadline_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // By due time; among equal times in order of arrival (a multimap inserts after its equals).
  std::multimap<absl::Time, SteppedTask*> due_ ABSL_GUARDED_BY(mu_);
  std::map<SteppedTask*, std::unique_ptr<SteppedTask>> owned_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_DRIVER_POOL_H_
