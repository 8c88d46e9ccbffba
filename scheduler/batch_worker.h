// One thread that hands everything queued since it last looked to `handle` at once, in the
// order it came. SubmitRun queues its calls here, so that a burst of submissions is written to
// the run store in one synced write (Runs::CreateMany) rather than one each, and gRPC's threads,
// which must not block, only queue.
//
// Thread-safety: Add may be called from any thread.
#ifndef PROLONG_SCHEDULER_BATCH_WORKER_H_
#define PROLONG_SCHEDULER_BATCH_WORKER_H_

#include <pthread.h>

#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace prolong::scheduler {

template <typename T>
class BatchWorker {
 public:
  using Handle = std::function<void(std::vector<T>& batch)>;
  // `name` names the thread (at most 15 characters), as profiles and `top -H` show it.
  BatchWorker(const std::string& name, Handle handle) : handle_(std::move(handle)) {
    thread_ = std::thread([this, name] {
      pthread_setname_np(pthread_self(), name.c_str());
      Work();
    });
  }
  // Handles what is queued, then ends the thread.
  ~BatchWorker() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }
  BatchWorker(const BatchWorker&) = delete;
  BatchWorker& operator=(const BatchWorker&) = delete;

  // Not to be called once destruction has begun.
  void Add(T item) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(item));
  }

 private:
  void Work() {
    while (true) {
      std::vector<T> batch;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || stopping_;
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;  // stopping, with nothing left
        batch.swap(queue_);
      }
      handle_(batch);
    }
  }

  const Handle handle_;
  absl::Mutex mu_;
  std::vector<T> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_BATCH_WORKER_H_
