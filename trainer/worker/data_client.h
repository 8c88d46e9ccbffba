// A trainer rank's side of the DataMixer: the stage's plan, and the rank's batches streamed in
// step order by a background reader that stays a few batches ahead of training. The gRPC stream
// is the prefetch: the datamixer keeps its own bounded queue per stream, and HTTP/2 flow control
// holds it back when the trainer is slower. No LibTorch here.
//
// A stream outlives its datamixer: when the call breaks (the datamixer died or restarted) or
// stalls (training waits longer than the client's timeout for a batch: a hung datamixer), the
// reader plans the stage again (PlanStage is idempotent, so a restarted datamixer gives the same
// plan id for the same data) and resumes from the next step it has not received, backing off
// between tries. It gives up, with UNAVAILABLE naming the datamixer and the step, once the
// datamixer has been gone for the client's timeout, and with FAILED_PRECONDITION if it comes
// back with other data (another plan id).
//
// Thread-safety: a DataClient may be used from any thread; a BatchStream from one.
#ifndef PROLONG_TRAINER_WORKER_DATA_CLIENT_H_
#define PROLONG_TRAINER_WORKER_DATA_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/bounded_queue.h"
#include "common/security.h"
#include "grpcpp/client_context.h"
#include "prolong/v1/datamixer.grpc.pb.h"

namespace prolong::worker {

class DataClient;

class BatchStream {
 public:
  // Cancels the call and waits for the reader.
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  // The next batch. OUT_OF_RANGE once the stream ended normally; the stream's error, naming the
  // datamixer, if it broke for good.
  absl::StatusOr<v1::Batch> Next();

  // Times the stream was opened again after breaking or stalling.
  int reconnects() {
    absl::MutexLock lock(&mu_);
    return reconnects_;
  }

  // Batches received and not yet taken.
  size_t buffered() { return queue_.size(); }

 private:
  friend class DataClient;
  BatchStream(DataClient* client, int read_ahead) : client_(client), queue_(read_ahead) {}
  void Read(v1::StageSpec stage, uint64_t seed, v1::StreamBatchesRequest request);
  // One call from request.start_step(); returns how it ended and moves start_step on.
  grpc::Status ReadOnce(v1::StreamBatchesRequest& request);
  // Waits out `backoff`, then plans the stage again, waiting for the datamixer until
  // `deadline`. An error if the stream cannot go on: another plan id, or a refused plan.
  absl::Status Reconnect(const v1::StageSpec& stage, uint64_t seed, const std::string& plan_id,
                         absl::Duration backoff, absl::Time deadline);
  // Runs `call` with `context` as the call in progress, which the destructor and a stalled Next
  // cancel; CANCELLED without running it once the destructor has begun.
  template <typename Call>
  grpc::Status WithCall(grpc::ClientContext& context, Call call);

  DataClient* const client_;
  BoundedQueue<v1::Batch> queue_;
  absl::Mutex mu_;
  grpc::ClientContext* call_ ABSL_GUARDED_BY(mu_) = nullptr;  // the call in progress
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;                 // Next cancelled it
  bool closing_ ABSL_GUARDED_BY(mu_) = false;                 // the destructor runs
  int reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

class DataClient {
 public:
  // A channel to the datamixer at `address` (it connects lazily), over TLS when `security` says
  // so. Calls wait up to `timeout` for the datamixer to be reachable.
  DataClient(std::string address, absl::Duration timeout, const ClientSecurity& security = {});

  // PlanStage. UNAVAILABLE "datamixer ADDRESS: unreachable ..." if it did not answer within the
  // timeout; the datamixer's own error (a domain short of data, a bad stage) otherwise.
  absl::StatusOr<v1::StagePlan> PlanStage(const v1::StageSpec& stage, uint64_t seed);

  // Streams the rank's slice of every step from `start_step` to the end of `plan` (what
  // PlanStage(stage, seed) returned), with up to `read_ahead` batches received ahead of Next.
  std::unique_ptr<BatchStream> StreamBatches(const v1::StageSpec& stage, uint64_t seed,
                                             const v1::StagePlan& plan, const v1::RankSpec& rank,
                                             int64_t start_step, int read_ahead);

  const std::string& address() const { return address_; }
  absl::Duration timeout() const { return timeout_; }

 private:
  friend class BatchStream;
  // PlanStage within `context`'s deadline.
  absl::StatusOr<v1::StagePlan> Plan(const v1::StageSpec& stage, uint64_t seed,
                                     grpc::ClientContext& context);

  std::string address_;
  absl::Duration timeout_;
  std::unique_ptr<v1::DataMixer::Stub> stub_;
};

}  // namespace prolong::worker

#endif  // PROLONG_TRAINER_WORKER_DATA_CLIENT_H_
