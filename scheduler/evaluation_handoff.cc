#include "scheduler/evaluation_handoff.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace prolong::scheduler {
namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(500);
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

}  // namespace

EvaluationHandoff::EvaluationHandoff(std::string default_address, ClientSecurity security,
                                     OnScored on_scored)
    : default_address_(std::move(default_address)),
      security_(std::move(security)),
      on_scored_(std::move(on_scored)) {
  thread_ = std::thread([this] { Loop(); });
}

EvaluationHandoff::~EvaluationHandoff() {
  stopping_.Notify();
  thread_.join();
}

void EvaluationHandoff::Submit(const std::string& run_id, const v1::RunSpec& spec,
                               const v1::Checkpoint& checkpoint) {
  Item item;
  item.run_id = run_id;
  item.address = spec.evaluation().evaluator_address().empty()
                     ? default_address_
                     : spec.evaluation().evaluator_address();
  item.request.set_checkpoint_path(checkpoint.path());
  *item.request.mutable_tokenizer() = spec.model().tokenizer();
  *item.request.mutable_spec() = spec.evaluation().spec();
  item.request.set_run_id(run_id);
  item.request.set_stage(checkpoint.stage());
  item.request.set_step(checkpoint.step());
  absl::MutexLock lock(&mu_);
  items_.push_back(std::move(item));
}

int EvaluationHandoff::Pending(const std::string& run_id) const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(std::count_if(items_.begin(), items_.end(),
                                        [&](const Item& item) { return item.run_id == run_id; }));
}

void EvaluationHandoff::Forget(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  items_.erase(std::remove_if(items_.begin(), items_.end(),
                              [&](const Item& item) { return item.run_id == run_id; }),
               items_.end());
}

v1::Evaluator::Stub& EvaluationHandoff::Stub(const std::string& address) {
  // Specs may name any number of evaluators over a scheduler's life: the channels kept are
  // bounded (Advance holds one stub at a time, so dropping the others is safe).
  if (stubs_.size() >= kMaxChannels && stubs_.count(address) == 0) stubs_.clear();
  std::unique_ptr<v1::Evaluator::Stub>& stub = stubs_[address];
  if (stub == nullptr) {
    stub = v1::Evaluator::NewStub(OpenChannel(address, security_));
  }
  return *stub;
}

void EvaluationHandoff::Loop() {
  do {
    std::vector<Item> items;
    {
      absl::MutexLock lock(&mu_);
      items = items_;
    }
    for (Item& item : items) {
      const bool ended = Advance(item);
      absl::MutexLock lock(&mu_);
      // The item may have been forgotten meanwhile.
      auto same = std::find_if(items_.begin(), items_.end(), [&](const Item& held) {
        return held.run_id == item.run_id &&
               held.request.checkpoint_path() == item.request.checkpoint_path();
      });
      if (same == items_.end()) continue;
      if (ended) {
        items_.erase(same);
      } else {
        same->evaluation_id = item.evaluation_id;
      }
    }
  } while (!stopping_.WaitForNotificationWithTimeout(kPoll));
}

bool EvaluationHandoff::Advance(Item& item) {
  v1::Evaluator::Stub& stub = Stub(item.address);
  v1::Evaluation evaluation;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  AddCredentials(context, security_);
  grpc::Status status;
  if (item.evaluation_id.empty()) {
    status = stub.Evaluate(&context, item.request, &evaluation);
  } else {
    v1::GetEvaluationRequest request;
    request.set_evaluation_id(item.evaluation_id);
    status = stub.GetEvaluation(&context, request, &evaluation);
  }
  if (!status.ok()) {
    // An evaluator that is down or busy is asked again; one that refuses the checkpoint is not.
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return false;
    }
    v1::EvaluationSummary summary;
    summary.set_stage(item.request.stage());
    summary.set_step(item.request.step());
    on_scored_(item.run_id, summary,
               absl::StrCat("evaluator ", item.address, ": ", status.error_message()));
    return true;
  }
  item.evaluation_id = evaluation.evaluation_id();
  if (evaluation.state() != v1::EVALUATION_STATE_SUCCEEDED &&
      evaluation.state() != v1::EVALUATION_STATE_FAILED) {
    return false;
  }
  v1::EvaluationSummary summary;
  summary.set_evaluation_id(evaluation.evaluation_id());
  summary.set_stage(item.request.stage());
  summary.set_step(item.request.step());
  for (const v1::CategoryScore& score : evaluation.category_scores()) {
    if (score.input_length() == 0)
      (*summary.mutable_category_scores())[score.category()] = score.score();
  }
  on_scored_(item.run_id, summary,
             evaluation.state() == v1::EVALUATION_STATE_FAILED ? evaluation.message() : "");
  return true;
}

}  // namespace prolong::scheduler
