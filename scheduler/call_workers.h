// A few threads that run the blocking part of calls (a synced write, a call to a datamixer) in
// the order the calls came. gRPC's callback API runs handlers on a couple of shared threads that
// must not block; its synchronous API gives every call in flight a thread of its own, and with
// 50 callers on 2 cores they take turns in whatever order the kernel picks. A handler that
// queues its blocking part here returns at once, and a few threads working through the queue
// keep the calls in order and concurrent writes grouped.
//
// Thread-safety: Add may be called from any thread.
#ifndef PROLONG_SCHEDULER_CALL_WORKERS_H_
#define PROLONG_SCHEDULER_CALL_WORKERS_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace prolong::scheduler {

class CallWorkers {
 public:
  // `name` names the threads (at most 15 characters), as profiles and `top -H` show them.
  CallWorkers(int threads, const std::string& name);
  // Runs what is queued, then ends the threads.
  ~CallWorkers();
  CallWorkers(const CallWorkers&) = delete;
  CallWorkers& operator=(const CallWorkers&) = delete;

  // Runs `work` on one of the threads once the work queued before it has started. Not to be
  // called once destruction has begun.
  void Add(std::function<void()> work);

 private:
  void Work();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_CALL_WORKERS_H_
