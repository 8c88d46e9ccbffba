// A trainer rank's side of the DataMixer: the stage's plan, and the rank's batches streamed in
// step order by a background reader that stays a few batches ahead of training. The gRPC stream
// is the prefetch: the datamixer keeps its own bounded queue per stream, and HTTP/2 flow control
// holds it back when the trainer is slower. No LibTorch here.
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

class BatchStream {
 public:
  // Cancels the call and waits for the reader.
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  // The next batch. OUT_OF_RANGE once the stream ended normally; the stream's error, naming the
  // datamixer, if it broke.
  absl::StatusOr<v1::Batch> Next();

  // Batches received and not yet taken.
  size_t buffered() { return queue_.size(); }

 private:
  friend class DataClient;
  BatchStream(std::string address, int read_ahead)
      : address_(std::move(address)), queue_(read_ahead) {}
  void Read(v1::DataMixer::StubInterface* stub, v1::StreamBatchesRequest request);

  const std::string address_;
  grpc::ClientContext context_;
  BoundedQueue<v1::Batch> queue_;
  absl::Mutex mu_;
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

  // Streams the rank's slice of every step from `start_step` to the end of the plan, with up to
  // `read_ahead` batches received ahead of Next.
  std::unique_ptr<BatchStream> StreamBatches(const std::string& plan_id, const v1::RankSpec& rank,
                                             int64_t start_step, int read_ahead);

  const std::string& address() const { return address_; }

 private:
  std::string address_;
  absl::Duration timeout_;
  std::unique_ptr<v1::DataMixer::Stub> stub_;
};

}  // namespace prolong::worker

#endif  // PROLONG_TRAINER_WORKER_DATA_CLIENT_H_
