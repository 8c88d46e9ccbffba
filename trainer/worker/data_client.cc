#include "trainer/worker/data_client.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/status_macros.h"

namespace prolong::worker {
namespace {

// Batches are a rank's slice of up to millions of tokens at 5 bytes each.
constexpr int kMaxMessageBytes = 1 << 30;

// Between tries to reach a datamixer that went away: doubling, capped.
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

// How a call ends when its datamixer died, restarted (and lost its plans), was cancelled for
// stalling or serves all the streams it may: worth planning again and resuming. Anything else
// is the datamixer's answer.
bool BrokeOff(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::NOT_FOUND || code == grpc::StatusCode::CANCELLED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

DataClient::DataClient(std::string address, absl::Duration timeout, const ClientSecurity& security)
    : address_(std::move(address)), timeout_(timeout) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  stub_ = v1::DataMixer::NewStub(OpenChannel(address_, security, arguments));
}

absl::StatusOr<v1::StagePlan> DataClient::PlanStage(const v1::StageSpec& stage, uint64_t seed) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return Plan(stage, seed, context);
}

absl::StatusOr<v1::StagePlan> DataClient::Plan(const v1::StageSpec& stage, uint64_t seed,
                                               grpc::ClientContext& context) {
  // A datamixer still starting up is waited for, up to the deadline.
  context.set_wait_for_ready(true);
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

std::unique_ptr<BatchStream> DataClient::StreamBatches(const v1::StageSpec& stage, uint64_t seed,
                                                       const v1::StagePlan& plan,
                                                       const v1::RankSpec& rank, int64_t start_step,
                                                       int read_ahead) {
  v1::StreamBatchesRequest request;
  request.set_plan_id(plan.plan_id());
  *request.mutable_rank() = rank;
  request.set_start_step(start_step);
  std::unique_ptr<BatchStream> stream(new BatchStream(this, read_ahead));
  stream->reader_ = std::thread(&BatchStream::Read, stream.get(), stage, seed, request);
  return stream;
}

template <typename Call>
grpc::Status BatchStream::WithCall(grpc::ClientContext& context, Call call) {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return grpc::Status(grpc::StatusCode::CANCELLED, "the stream was closed");
    call_ = &context;
  }
  grpc::Status status = call();
  absl::MutexLock lock(&mu_);
  call_ = nullptr;
  return status;
}

grpc::Status BatchStream::ReadOnce(v1::StreamBatchesRequest& request) {
  grpc::ClientContext context;
  return WithCall(context, [&] {
    std::unique_ptr<grpc::ClientReader<v1::Batch>> reader =
        client_->stub_->StreamBatches(&context, request);
    v1::Batch batch;
    while (reader->Read(&batch)) {
      request.set_start_step(batch.step() + 1);
      if (!queue_.Push(std::move(batch))) break;  // Cancelled: the stream is being destroyed.
      batch = v1::Batch();
    }
    return reader->Finish();
  });
}

absl::Status BatchStream::Reconnect(const v1::StageSpec& stage, uint64_t seed,
                                    const std::string& plan_id, absl::Duration backoff,
                                    absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&closing_), backoff);
  }
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  absl::StatusOr<v1::StagePlan> plan;
  const grpc::Status called = WithCall(context, [&] {
    plan = client_->Plan(stage, seed, context);
    return grpc::Status::OK;
  });
  if (!called.ok()) return absl::OkStatus();  // The stream is closing: Read sees it next.
  // Unreachable still, or cancelled: the next call says so, and the deadline decides.
  if (!plan.ok() && (plan.status().code() == absl::StatusCode::kUnavailable ||
                     plan.status().code() == absl::StatusCode::kCancelled)) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(plan.status());
  if (plan->plan_id() != plan_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "datamixer ", client_->address(), " came back with other data: the stage's plan is ",
        plan->plan_id(), ", not ", plan_id, "; a stage resumes on the data it started with"));
  }
  return absl::OkStatus();
}

void BatchStream::Read(v1::StageSpec stage, uint64_t seed, v1::StreamBatchesRequest request) {
  const std::string& address = client_->address();
  absl::Status failure;
  absl::Time gone_since = absl::InfiniteFuture();
  absl::Duration backoff = kFirstBackoff;
  while (true) {
    const int64_t from = request.start_step();
    const grpc::Status status = ReadOnce(request);
    bool stalled;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) break;
      stalled = stalled_;
      stalled_ = false;
    }
    if (status.ok()) break;  // The plan's end.
    if (!stalled && !BrokeOff(status.error_code())) {
      failure =
          Annotate(FromGrpcStatus(status), absl::StrCat("datamixer ", address, ": StreamBatches"));
      break;
    }
    const absl::Time now = absl::Now();
    if (request.start_step() > from || gone_since == absl::InfiniteFuture()) {
      gone_since = now;  // It was there until this call broke.
      backoff = kFirstBackoff;
    }
    const std::string why =
        stalled ? absl::StrCat("no batch for ", absl::FormatDuration(client_->timeout()))
                : status.error_message();
    if (now - gone_since >= client_->timeout()) {
      failure = absl::UnavailableError(absl::StrCat(
          "datamixer ", address, ": gone for ", absl::FormatDuration(client_->timeout()),
          " at step ", request.start_step(), " (", why, ")"));
      break;
    }
    PROLONG_LOG(WARNING) << "datamixer " << address << ": the stream broke at step "
                         << request.start_step() << " (" << why << "); resuming";
    failure = Reconnect(stage, seed, request.plan_id(), backoff, gone_since + client_->timeout());
    if (!failure.ok()) break;
    backoff = std::min(2 * backoff, kMaxBackoff);
    absl::MutexLock lock(&mu_);
    ++reconnects_;
  }
  {
    absl::MutexLock lock(&mu_);
    final_status_ = failure;
  }
  queue_.Close();
}

absl::StatusOr<v1::Batch> BatchStream::Next() {
  bool stalled = false;
  std::optional<v1::Batch> batch = queue_.PopFor(client_->timeout(), &stalled);
  while (stalled) {
    // Training waited the whole timeout for a batch: the datamixer hangs. Cancelling the call
    // makes the reader plan again and resume, or give up once the datamixer has been gone for
    // the timeout.
    {
      absl::MutexLock lock(&mu_);
      if (call_ != nullptr) {
        stalled_ = true;
        call_->TryCancel();
      }
    }
    batch = queue_.PopFor(client_->timeout(), &stalled);
  }
  if (batch.has_value()) return *std::move(batch);
  absl::MutexLock lock(&mu_);
  if (!final_status_.ok()) return final_status_;
  return absl::OutOfRangeError(
      absl::StrCat("datamixer ", client_->address(), ": the stream ended"));
}

BatchStream::~BatchStream() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    if (call_ != nullptr) call_->TryCancel();
  }
  queue_.Cancel();
  if (reader_.joinable()) reader_.join();
}

}  // namespace prolong::worker
