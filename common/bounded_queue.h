#ifndef PROLONG_COMMON_BOUNDED_QUEUE_H_
#define PROLONG_COMMON_BOUNDED_QUEUE_H_

#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prolong {

// A bounded multi-producer, multi-consumer queue: Push blocks while it is full, so a slow
// consumer holds its producers back. Close() ends it once drained; Cancel() ends it at once and
// wakes everyone waiting.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}

  // False if the queue was cancelled.
  bool Push(T item) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](BoundedQueue* q) { return q->cancelled_ || q->items_.size() < q->capacity_; }, this));
    if (cancelled_) return false;
    items_.push_back(std::move(item));
    return true;
  }

  // nullopt once closed and empty, or cancelled.
  std::optional<T> Pop() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](BoundedQueue* q) { return q->cancelled_ || q->closed_ || !q->items_.empty(); }, this));
    if (cancelled_ || items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  // Like Pop, but gives up after `timeout` (nullopt, with *timed_out set).
  std::optional<T> PopFor(absl::Duration timeout, bool* timed_out) {
    absl::MutexLock lock(&mu_);
    *timed_out = !mu_.AwaitWithTimeout(
        absl::Condition(
            +[](BoundedQueue* q) { return q->cancelled_ || q->closed_ || !q->items_.empty(); },
            this),
        timeout);
    if (*timed_out || cancelled_ || items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  // Items waiting.
  size_t size() {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  void Cancel() {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

 private:
  absl::Mutex mu_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  const size_t capacity_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace prolong

#endif  // PROLONG_COMMON_BOUNDED_QUEUE_H_
