// The Evaluator gRPC service (proto/prolong/v1/evaluator.proto): evaluations are queued, run one
// at a time by a worker thread through the runner (evaluator/runner), and kept in the result
// store, so that a restarted evaluator lists what it did and resumes what it had not finished.
//
// Evaluate is idempotent: the same checkpoint path, tokenizer, spec and provenance give the
// same evaluation id, and asking again returns it (a failed one is queued again). The queue is
// bounded (RESOURCE_EXHAUSTED beyond it), and so are the WatchEvaluation streams open at once and
// the models kept loaded (least recently used dropped first).
//
// Metrics (on the registry given):
//   prolong_eval_score{run,stage,step,task,length}   a finished task's reported metric
//   prolong_eval_examples_total                      examples scored
//   prolong_eval_generated_tokens_total              tokens generated
//   prolong_eval_queue_depth                         evaluations waiting
//   prolong_eval_generation_tokens_per_second        the running evaluation's rate
//
// Thread-safety: every method may be called from many gRPC threads at once.
#ifndef PROLONG_EVALUATOR_SERVICE_EVALUATOR_SERVICE_H_
#define PROLONG_EVALUATOR_SERVICE_EVALUATOR_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "prometheus/registry.h"

namespace prolong::evaluator {

struct EvaluatorServiceOptions {
  std::string store_dir;  // the result store (created if absent)
  std::string data_dir;   // HELMET's data/ for the file-based tasks
  std::string device = "auto";
  int batch = 8;
  int64_t prefill_chunk = 4096;
  int max_queue = 64;         // evaluations waiting
  int max_loaded_models = 2;  // runners (models) kept loaded
  int max_watches = 256;      // WatchEvaluation streams open at once
  // Evaluate needs "authorization: Bearer <auth_token>" (common/security.h); empty: no token.
  std::string auth_token;
};

class EvaluatorService final : public v1::Evaluator::Service {
 public:
  // Opens the store and re-queues the evaluations a previous process left pending or running.
  // FAILED_PRECONDITION when the store is held by another process.
  static absl::StatusOr<std::unique_ptr<EvaluatorService>> Create(
      const EvaluatorServiceOptions& options, prometheus::Registry& registry);
  // Cancels the running evaluation (its scored examples are kept) and stops the worker.
  ~EvaluatorService() override;

  grpc::Status Evaluate(grpc::ServerContext* context, const v1::EvaluateRequest* request,
                        v1::Evaluation* response) override;
  grpc::Status GetEvaluation(grpc::ServerContext* context, const v1::GetEvaluationRequest* request,
                             v1::Evaluation* response) override;
  grpc::Status ListEvaluations(grpc::ServerContext* context,
                               const v1::ListEvaluationsRequest* request,
                               v1::ListEvaluationsResponse* response) override;
  grpc::Status WatchEvaluation(grpc::ServerContext* context,
                               const v1::WatchEvaluationRequest* request,
                               grpc::ServerWriter<v1::EvaluationEvent>* writer) override;

 private:
  struct State;
  explicit EvaluatorService(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace prolong::evaluator

#endif  // PROLONG_EVALUATOR_SERVICE_EVALUATOR_SERVICE_H_
