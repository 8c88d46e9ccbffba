#include "trainer/worker/scheduler_link.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace prolong::worker {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(10);
// Steps kept while the scheduler does not answer: minutes of training at small scale.
constexpr size_t kMaxQueuedMetrics = 4096;
// At most one ReportMetrics call per interval, with every step since the last: a small model
// trains several steps a second, and each call is an event for every watcher of the run.
constexpr absl::Duration kMetricsInterval = absl::Seconds(1);

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
}

std::string Hostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

SchedulerLink::SchedulerLink(const SchedulerLinkOptions& options,
                             std::unique_ptr<v1::Scheduler::Stub> stub)
    : options_(options), stub_(std::move(stub)) {
  metrics_sender_ = std::thread([this] { MetricsLoop(); });
}

SchedulerLink::~SchedulerLink() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  metrics_sender_.join();  // after the last queued step is sent
  stopping_.Notify();
  if (heartbeats_.joinable()) heartbeats_.join();
}

absl::StatusOr<std::unique_ptr<SchedulerLink>> SchedulerLink::Register(
    const SchedulerLinkOptions& options) {
  auto channel = OpenChannel(options.scheduler_address, options.security);
  std::unique_ptr<SchedulerLink> link(new SchedulerLink(options, v1::Scheduler::NewStub(channel)));
  v1::RegisterWorkerRequest request;
  request.set_run_id(options.run_id);
  request.set_attempt(options.attempt);
  request.set_rank(options.rank);
  request.set_hostname(Hostname());
  request.set_pid(getpid());
  request.set_metrics_address(options.metrics_address);
  request.set_rendezvous_address(options.rendezvous_address);
  const absl::Time deadline = absl::Now() + options.register_timeout;
  absl::Duration backoff = absl::Milliseconds(50);
  while (true) {
    grpc::ClientContext context;
    SetDeadline(context);
    const absl::Status status =
        FromGrpcStatus(link->stub_->RegisterWorker(&context, request, &link->assignment_));
    if (status.ok()) return link;
    // UNAVAILABLE: the scheduler is not up, or rank 0 has not registered yet.
    if (status.code() != absl::StatusCode::kUnavailable &&
        status.code() != absl::StatusCode::kDeadlineExceeded) {
      return Annotate(
          status, absl::StrCat("registering with the scheduler at ", options.scheduler_address));
    }
    if (absl::Now() + backoff > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("registering with the scheduler at ", options.scheduler_address,
                       ": no assignment within ", absl::FormatDuration(options.register_timeout),
                       ": ", status.message()));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(1));
  }
}

void SchedulerLink::StartHeartbeats(std::function<void(v1::WorkerAction)> on_action) {
  heartbeats_ = std::thread([this, on_action = std::move(on_action)] { HeartbeatLoop(on_action); });
}

void SchedulerLink::HeartbeatLoop(std::function<void(v1::WorkerAction)> on_action) {
  const absl::Duration interval =
      absl::Milliseconds(std::max<int64_t>(10, assignment_.heartbeat_interval_ms()));
  bool reachable = true;
  do {
    v1::HeartbeatRequest request;
    request.set_worker_id(assignment_.worker_id());
    request.set_step(step_);
    v1::HeartbeatResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    const grpc::Status status = stub_->Heartbeat(&context, request, &response);
    if (!status.ok()) {
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
          status.error_code() == grpc::StatusCode::NOT_FOUND) {
        // The scheduler no longer knows this worker's attempt: a newer gang replaced it.
        PROLONG_LOG(WARNING) << "the scheduler refused the heartbeat: " << status.error_message();
        on_action(v1::WORKER_ACTION_STOP);
      } else if (reachable) {
        PROLONG_LOG(WARNING) << "heartbeat to the scheduler at " << options_.scheduler_address
                             << " failed: " << status.error_message() << "; training goes on";
      }
      reachable = false;
      continue;
    }
    reachable = true;
    if (response.action() != v1::WORKER_ACTION_CONTINUE &&
        response.action() != v1::WORKER_ACTION_UNSPECIFIED) {
      on_action(response.action());
    }
  } while (!stopping_.WaitForNotificationWithTimeout(interval));
}

void SchedulerLink::ReportMetrics(const v1::StepMetrics& metrics) {
  absl::MutexLock lock(&mu_);
  if (queued_.size() == kMaxQueuedMetrics) {
    queued_.pop_front();
    if (dropped_++ == 0) {
      PROLONG_LOG(WARNING) << "the scheduler has not taken the last " << kMaxQueuedMetrics
                           << " steps' metrics; dropping the oldest";
    }
  }
  queued_.push_back(metrics);
}

void SchedulerLink::MetricsLoop() {
  absl::Time last_sent = absl::InfinitePast();
  while (true) {
    v1::ReportMetricsRequest request;
    {
      absl::MutexLock lock(&mu_);
      sending_ = false;
      auto ready = [this] { return !queued_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      // The steps of the next kMetricsInterval go with these, unless a checkpoint or the end
      // wants them sent now.
      auto now_wanted = [this] { return flush_ || closing_; };
      mu_.AwaitWithDeadline(absl::Condition(&now_wanted), last_sent + kMetricsInterval);
      flush_ = false;
      if (queued_.empty()) return;
      for (v1::StepMetrics& metrics : queued_) *request.add_metrics() = std::move(metrics);
      queued_.clear();
      sending_ = true;
    }
    request.set_worker_id(assignment_.worker_id());  // set before the first step was queued
    last_sent = absl::Now();
    v1::ReportMetricsResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    const grpc::Status status = stub_->ReportMetrics(&context, request, &response);
    if (!status.ok()) {
      PROLONG_LOG(WARNING) << "reporting steps " << request.metrics(0).step() << " to "
                           << request.metrics(request.metrics_size() - 1).step()
                           << " to the scheduler failed: " << status.error_message();
    }
  }
}

void SchedulerLink::ReportCheckpoint(const v1::Checkpoint& checkpoint) {
  v1::ReportCheckpointRequest request;
  request.set_worker_id(assignment_.worker_id());
  *request.mutable_checkpoint() = checkpoint;
  {
    // The steps up to the checkpoint come before it in the run's events.
    absl::MutexLock lock(&mu_);
    flush_ = true;
    auto sent = [this] { return queued_.empty() && !sending_; };
    mu_.Await(absl::Condition(&sent));
  }
  // A checkpoint matters more than a step's metrics: a few tries.
  for (int attempt = 0; attempt < 3; ++attempt) {
    v1::ReportCheckpointResponse response;
    grpc::ClientContext context;
    SetDeadline(context);
    const grpc::Status status = stub_->ReportCheckpoint(&context, request, &response);
    if (status.ok()) return;
    PROLONG_LOG(WARNING) << "reporting checkpoint " << checkpoint.path()
                         << " to the scheduler failed: " << status.error_message();
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return;
    absl::SleepFor(absl::Seconds(1));
  }
}

}  // namespace prolong::worker
