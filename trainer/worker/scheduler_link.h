// A trainer worker's side of the Scheduler, in scheduler mode: it registers (rank 0 with the
// address of the gang's store it hosts; the other ranks learn it from their assignment),
// heartbeats with its step from a background thread, and rank 0 reports each step's metrics (from
// another thread, at most once a second with the steps since, so that the training loop never
// waits for the scheduler) and each checkpoint. The scheduler answers a heartbeat with what to do:
// continue, stop after a checkpoint, or stop now. A scheduler that cannot be reached for a while
// does not stop training (a restarted scheduler takes the gang back or fences it by its attempt
// number). No LibTorch here.
//
// Thread-safety: every method may be called from any thread.
#ifndef PROLONG_TRAINER_WORKER_SCHEDULER_LINK_H_
#define PROLONG_TRAINER_WORKER_SCHEDULER_LINK_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "prolong/v1/scheduler.grpc.pb.h"

namespace prolong::worker {

struct SchedulerLinkOptions {
  std::string scheduler_address;
  std::string run_id;
  int64_t attempt = 0;
  int rank = 0;
  // Rank 0: the store it hosts. Empty on the other ranks.
  std::string rendezvous_address;
  std::string metrics_address;
  // How long to keep asking while rank 0 has not registered or the scheduler is unreachable.
  absl::Duration register_timeout = absl::Minutes(5);
  // TLS toward the scheduler (common/security.h).
  ClientSecurity security;
};

class SchedulerLink {
 public:
  // Registers. FAILED_PRECONDITION when the attempt is over (this gang was replaced),
  // NOT_FOUND for an unknown run, DEADLINE_EXCEEDED when rank 0 never registered or the
  // scheduler never answered within register_timeout.
  static absl::StatusOr<std::unique_ptr<SchedulerLink>> Register(
      const SchedulerLinkOptions& options);
  // Stops heartbeating.
  ~SchedulerLink();

  const v1::WorkerAssignment& assignment() const { return assignment_; }

  // Heartbeats from now on, every assignment().heartbeat_interval_ms; `on_action` gets every
  // answer other than CONTINUE (on the heartbeat thread).
  void StartHeartbeats(std::function<void(v1::WorkerAction)> on_action);
  // The step the next heartbeat reports.
  void SetStep(int64_t step) { step_ = step; }
  // Queued and returns at once; sent within a second. The oldest queued steps are dropped (and
  // the drop logged) while the scheduler cannot be reached. Failures are logged, not returned:
  // training goes on without the scheduler.
  void ReportMetrics(const v1::StepMetrics& metrics);
  // Sent after the steps queued before it, with a few tries; returns once answered.
  void ReportCheckpoint(const v1::Checkpoint& checkpoint);

 private:
  SchedulerLink(const SchedulerLinkOptions& options, std::unique_ptr<v1::Scheduler::Stub> stub);
  void HeartbeatLoop(std::function<void(v1::WorkerAction)> on_action);
  // Sends queued metrics until the link closes and the queue is empty.
  void MetricsLoop();

  const SchedulerLinkOptions options_;
  std::unique_ptr<v1::Scheduler::Stub> stub_;
  v1::WorkerAssignment assignment_;
  std::atomic<int64_t> step_{0};
  absl::Notification stopping_;
  std::thread heartbeats_;

  absl::Mutex mu_;
  std::deque<v1::StepMetrics> queued_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_ ABSL_GUARDED_BY(mu_) = false;  // a checkpoint waits for the queued steps
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread metrics_sender_;
};

}  // namespace prolong::worker

#endif  // PROLONG_TRAINER_WORKER_SCHEDULER_LINK_H_
