// A few threads that run the blocking part of calls (a dry run's calls to a datamixer) in the
// order the calls came. gRPC's callback API runs handlers on a couple of shared threads that
// must not block: a handler that queues its blocking part here returns at once.
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
