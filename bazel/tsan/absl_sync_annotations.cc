// Happens-before for ThreadSanitizer across Debian's Abseil synchronization, which is built
// without TSan: its Mutex, CondVar and Notification synchronize inside uninstrumented code
// (futexes), so TSan sees none of it and reports every access to data they guard as a race.
// Under --config=tsan the linker points our calls to them at these wrappers (--wrap, see
// BUILD.bazel), which tell TSan what the real calls do: a lock acquires what the last unlock
// released, a wait releases the mutex and acquires it again, a notification releases and a
// wait for it acquires. A Condition is evaluated by whichever thread holds the mutex inside
// Abseil, so its evaluation acquires the mutex first and releases it after. This is the part of
// Abseil's own TSan annotations (ABSL_TSAN_MUTEX_*) that a sanitizer build of Abseil would carry.
// LockWhen is not wrapped (prolong does not call it): its waiter's Condition is read by the
// unlocking thread with no release of the waiter's before it, so it would need Abseil's own
// annotations.
#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "sanitizer/tsan_interface.h"

namespace {

void Acquire(const void* address) { __tsan_acquire(const_cast<void*>(address)); }
void Release(const void* address) { __tsan_release(const_cast<void*>(address)); }

// The Notification's flag, which HasBeenNotified reads without its mutex: Notify releases both.
const void* FlagOf(const absl::Notification* notification) {
  struct Layout {
    absl::Mutex mutex;
    std::atomic<bool> notified;
  };
  static_assert(sizeof(Layout) == sizeof(absl::Notification), "Notification's layout changed");
  return &reinterpret_cast<const Layout*>(notification)->notified;
}

struct Guarded {
  const absl::Condition* condition;
  const absl::Mutex* mutex;
};

// Runs while the evaluating thread holds the mutex inside Abseil, which may then release it
// without returning to a wrapper: the evaluation's reads happen before the next holder's writes.
bool EvaluateHolding(Guarded* guarded) {
  Acquire(guarded->mutex);
  const bool met = guarded->condition->Eval();
  Release(guarded->mutex);
  return met;
}

}  // namespace

// Each wrapper has the real function's signature, with `self` for `this`.
extern "C" {
using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

// Mutex::Lock, Unlock, ReaderLock, ReaderUnlock, TryLock, ReaderTryLock.
void __real__ZN4absl7debian35Mutex4LockEv(Mutex* self);
void __wrap__ZN4absl7debian35Mutex4LockEv(Mutex* self) {
  __real__ZN4absl7debian35Mutex4LockEv(self);
  Acquire(self);
}
void __real__ZN4absl7debian35Mutex6UnlockEv(Mutex* self);
void __wrap__ZN4absl7debian35Mutex6UnlockEv(Mutex* self) {
  Release(self);
  __real__ZN4absl7debian35Mutex6UnlockEv(self);
}
void __real__ZN4absl7debian35Mutex10ReaderLockEv(Mutex* self);
void __wrap__ZN4absl7debian35Mutex10ReaderLockEv(Mutex* self) {
  __real__ZN4absl7debian35Mutex10ReaderLockEv(self);
  Acquire(self);
}
void __real__ZN4absl7debian35Mutex12ReaderUnlockEv(Mutex* self);
void __wrap__ZN4absl7debian35Mutex12ReaderUnlockEv(Mutex* self) {
  Release(self);
  __real__ZN4absl7debian35Mutex12ReaderUnlockEv(self);
}
bool __real__ZN4absl7debian35Mutex7TryLockEv(Mutex* self);
bool __wrap__ZN4absl7debian35Mutex7TryLockEv(Mutex* self) {
  const bool locked = __real__ZN4absl7debian35Mutex7TryLockEv(self);
  if (locked) Acquire(self);
  return locked;
}
bool __real__ZN4absl7debian35Mutex13ReaderTryLockEv(Mutex* self);
bool __wrap__ZN4absl7debian35Mutex13ReaderTryLockEv(Mutex* self) {
  const bool locked = __real__ZN4absl7debian35Mutex13ReaderTryLockEv(self);
  if (locked) Acquire(self);
  return locked;
}

// Mutex::Await: releases the mutex while it waits, and holds it again when it returns.
void __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex* self, const Condition& c);
void __wrap__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex* self, const Condition& c) {
  // Built before the release: other threads evaluate it once the mutex is free.
  Guarded guarded{&c, self};
  const Condition holding(&EvaluateHolding, &guarded);
  Release(self);
  __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(self, holding);
  Acquire(self);
}
bool __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* self, const Condition& c, Duration timeout);
bool __wrap__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* self, const Condition& c, Duration timeout) {
  // Built before the release: other threads evaluate it once the mutex is free.
  Guarded guarded{&c, self};
  const Condition holding(&EvaluateHolding, &guarded);
  Release(self);
  const bool met = __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
      self, holding, timeout);
  Acquire(self);
  return met;
}
bool __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* self, const Condition& c, Time deadline);
bool __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* self, const Condition& c, Time deadline) {
  // Built before the release: other threads evaluate it once the mutex is free.
  Guarded guarded{&c, self};
  const Condition holding(&EvaluateHolding, &guarded);
  Release(self);
  const bool met = __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
      self, holding, deadline);
  Acquire(self);
  return met;
}

// CondVar::Wait: the same for the mutex it is given.
void __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(CondVar* self, Mutex* mu);
void __wrap__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(CondVar* self, Mutex* mu) {
  Release(mu);
  __real__ZN4absl7debian37CondVar4WaitEPNS0_5MutexE(self, mu);
  Acquire(mu);
}
bool __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(CondVar* self,
                                                                                 Mutex* mu,
                                                                                 Duration timeout);
bool __wrap__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(CondVar* self,
                                                                                 Mutex* mu,
                                                                                 Duration timeout) {
  Release(mu);
  const bool timed_out =
      __real__ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE(self, mu,
                                                                                  timeout);
  Acquire(mu);
  return timed_out;
}
bool __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(CondVar* self,
                                                                              Mutex* mu,
                                                                              Time deadline);
bool __wrap__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(CondVar* self,
                                                                              Mutex* mu,
                                                                              Time deadline) {
  Release(mu);
  const bool timed_out =
      __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(self, mu, deadline);
  Acquire(mu);
  return timed_out;
}

// Notification: Notify releases; a wait that sees it notified acquires.
void __real__ZN4absl7debian312Notification6NotifyEv(Notification* self);
void __wrap__ZN4absl7debian312Notification6NotifyEv(Notification* self) {
  Release(self);
  Release(FlagOf(self));
  __real__ZN4absl7debian312Notification6NotifyEv(self);
}
bool __real__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(
    const std::atomic<bool>* flag);
bool __wrap__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(
    const std::atomic<bool>* flag) {
  const bool notified =
      __real__ZN4absl7debian312Notification23HasBeenNotifiedInternalEPKSt6atomicIbE(flag);
  if (notified) Acquire(flag);
  return notified;
}
void __real__ZNK4absl7debian312Notification19WaitForNotificationEv(const Notification* self);
void __wrap__ZNK4absl7debian312Notification19WaitForNotificationEv(const Notification* self) {
  __real__ZNK4absl7debian312Notification19WaitForNotificationEv(self);
  Acquire(self);
}
bool __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const Notification* self, Duration timeout);
bool __wrap__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
    const Notification* self, Duration timeout) {
  const bool notified =
      __real__ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE(
          self, timeout);
  if (notified) Acquire(self);
  return notified;
}
bool __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const Notification* self, Time deadline);
bool __wrap__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(
    const Notification* self, Time deadline) {
  const bool notified =
      __real__ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE(self,
                                                                                         deadline);
  if (notified) Acquire(self);
  return notified;
}

}  // extern "C"
