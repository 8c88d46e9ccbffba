#include "trainer/worker/data_client.h"

#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"

namespace prolong::worker {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout);
}

// Batches are a rank's slice of up to millions of tokens at 5 bytes each.
constexpr int kMaxMessageBytes = 1 << 30;

}  // namespace

DataClient::DataClient(std::string address, absl::Duration timeout, const ClientSecurity& security)
    : address_(std::move(address)), timeout_(timeout) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  stub_ = v1::DataMixer::NewStub(OpenChannel(address_, security, arguments));
}

absl::StatusOr<v1::StagePlan> DataClient::PlanStage(const v1::StageSpec& stage, uint64_t seed) {
  grpc::ClientContext context;
  // A datamixer still starting up is waited for, up to the timeout.
  context.set_wait_for_ready(true);
  context.set_deadline(Deadline(timeout_));
  v1::PlanStageRequest request;
  *request.mutable_stage() = stage;
  request.set_seed(seed);
  v1::StagePlan plan;
  const grpc::Status status = stub_->PlanStage(&context, request, &plan);
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
      status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat("datamixer ", address_,
                                               ": unreachable (no answer to PlanStage within ",
                                               absl::FormatDuration(timeout_), ")"));
  }
  if (!status.ok()) {
    return absl::Status(
        FromGrpcStatus(status).code(),
        absl::StrCat("datamixer ", address_, ": PlanStage: ", status.error_message()));
  }
  return plan;
}

std::unique_ptr<BatchStream> DataClient::StreamBatches(const std::string& plan_id,
                                                       const v1::RankSpec& rank, int64_t start_step,
                                                       int read_ahead) {
  v1::StreamBatchesRequest request;
  request.set_plan_id(plan_id);
  *request.mutable_rank() = rank;
  request.set_start_step(start_step);
  std::unique_ptr<BatchStream> stream(new BatchStream(address_, read_ahead));
  stream->reader_ = std::thread(&BatchStream::Read, stream.get(), stub_.get(), request);
  return stream;
}

void BatchStream::Read(v1::DataMixer::StubInterface* stub, v1::StreamBatchesRequest request) {
  std::unique_ptr<grpc::ClientReaderInterface<v1::Batch>> reader =
      stub->StreamBatches(&context_, request);
  v1::Batch batch;
  while (reader->Read(&batch)) {
    if (!queue_.Push(std::move(batch))) break;  // Cancelled: the stream is being destroyed.
    batch = v1::Batch();
  }
  const grpc::Status status = reader->Finish();
  {
    absl::MutexLock lock(&mu_);
    final_status_ =
        Annotate(FromGrpcStatus(status), absl::StrCat("datamixer ", address_, ": StreamBatches"));
  }
  queue_.Close();
}

absl::StatusOr<v1::Batch> BatchStream::Next() {
  std::optional<v1::Batch> batch = queue_.Pop();
  if (batch.has_value()) return *std::move(batch);
  absl::MutexLock lock(&mu_);
  if (!final_status_.ok()) return final_status_;
  return absl::OutOfRangeError(absl::StrCat("datamixer ", address_, ": the stream ended"));
}

BatchStream::~BatchStream() {
  context_.TryCancel();
  queue_.Cancel();
  if (reader_.joinable()) reader_.join();
}

}  // namespace prolong::worker
