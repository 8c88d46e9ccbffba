#include "evaluator/service/evaluator_service.h"

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/call_slots.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/security.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "datamixer/tokenizer/load.h"
#include "evaluator/report/category_scores.h"
#include "evaluator/results/result_store.h"
#include "evaluator/runner/evaluation_runner.h"
#include "evaluator/tasks/task_registry.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "trainer/checkpoint/model_source.h"

namespace prolong::evaluator {
namespace {

using google::protobuf::util::TimeUtil;

bool Finished(v1::EvaluationState state) {
  return state == v1::EVALUATION_STATE_SUCCEEDED || state == v1::EVALUATION_STATE_FAILED;
}

// The same request gives the same id, whichever process sees it.
std::string EvaluationId(const v1::EvaluateRequest& request) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  Sha256 hasher;
  hasher.Update(bytes);
  return absl::StrCat("ev-", absl::BytesToHexString(hasher.Finish()).substr(0, 16));
}

std::string PresetName(v1::TokenizerPreset preset) {
  switch (preset) {
    case v1::TOKENIZER_PRESET_LLAMA3:
      return "llama3";
    case v1::TOKENIZER_PRESET_CL100K_BASE:
      return "cl100k_base";
    default:
      return "";
  }
}

absl::Status CheckRequest(const v1::EvaluateRequest& request) {
  if (request.checkpoint_path().empty()) {
    return absl::InvalidArgumentError("checkpoint_path is required");
  }
  if (request.tokenizer().path().empty()) {
    return absl::InvalidArgumentError("tokenizer.path is required");
  }
  if (request.spec().tasks().empty()) return absl::InvalidArgumentError("spec.tasks is empty");
  for (int i = 0; i < request.spec().tasks_size(); ++i) {
    const v1::EvalTask& task = request.spec().tasks(i);
    const std::string field = absl::StrCat("spec.tasks[", i, "]");
    if (task.input_lengths().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".input_lengths is empty"));
    }
    for (int64_t length : task.input_lengths()) {
      RETURN_IF_ERROR(Annotate(tasks::ResolveTask(task.name(), length).status(), field));
    }
  }
  // The checksums are verified when the evaluation loads the model.
  return checkpoint::ResolveModelSource(request.checkpoint_path(),
                                        checkpoint::Verification::kSizesOnly)
      .status();
}

struct Job {
  v1::EvaluateRequest request;
  v1::Evaluation evaluation;
  // Task results and state changes, in order, for watchers; progress is read from `evaluation`.
  std::vector<v1::EvaluationEvent> events;
  int64_t version = 0;  // bumped at every change
  std::atomic<bool> cancelled{false};
};

struct Metrics {
  explicit Metrics(prometheus::Registry& registry)
      : score(prometheus::BuildGauge()
                  .Name("prolong_eval_score")
                  .Help("A finished task's reported metric at one input length (0-100).")
                  .Register(registry)),
        examples(prometheus::BuildCounter()
                     .Name("prolong_eval_examples_total")
                     .Help("Examples scored since the evaluator started.")
                     .Register(registry)
                     .Add({})),
        tokens(prometheus::BuildCounter()
                   .Name("prolong_eval_generated_tokens_total")
                   .Help("Tokens generated since the evaluator started.")
                   .Register(registry)
                   .Add({})),
        queue_depth(prometheus::BuildGauge()
                        .Name("prolong_eval_queue_depth")
                        .Help("Evaluations waiting for the worker.")
                        .Register(registry)
                        .Add({})),
        tokens_per_second(prometheus::BuildGauge()
                              .Name("prolong_eval_generation_tokens_per_second")
                              .Help("The running evaluation's generated tokens per second.")
                              .Register(registry)
                              .Add({})) {}

  prometheus::Family<prometheus::Gauge>& score;
  prometheus::Counter& examples;
  prometheus::Counter& tokens;
  prometheus::Gauge& queue_depth;
  prometheus::Gauge& tokens_per_second;
};

}  // namespace

struct EvaluatorService::State {
  State(const EvaluatorServiceOptions& options, prometheus::Registry& registry)
      : options(options),
        metrics(registry),
        watches(options.max_watches, "WatchEvaluation streams (--max-watches)") {}

  void Work();
  absl::Status RunJob(const std::shared_ptr<Job>& job);
  absl::StatusOr<std::shared_ptr<EvaluationRunner>> Runner(const v1::EvaluateRequest& request);
  // Applies `change` to the job's evaluation, records `event` for watchers (when set), stores the
  // evaluation (when `persist`) and wakes the watchers.
  void Update(Job& job, const std::function<void(v1::Evaluation&)>& change, bool event,
              const v1::TaskResult* result, bool persist);

  const EvaluatorServiceOptions options;
  Metrics metrics;
  CallSlots watches;
  std::unique_ptr<results::ResultStore> store;

  absl::Mutex mu;
  absl::CondVar changed;  // any job changed, or the queue did
  std::map<std::string, std::shared_ptr<Job>> jobs ABSL_GUARDED_BY(mu);
  std::deque<std::shared_ptr<Job>> queue ABSL_GUARDED_BY(mu);
  std::shared_ptr<Job> running ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;

  // Loaded runners by checkpoint and tokenizer, most recently used first (the worker's only).
  std::list<std::pair<std::string, std::shared_ptr<EvaluationRunner>>> runners;
  std::thread worker;
};

void EvaluatorService::State::Update(Job& job, const std::function<void(v1::Evaluation&)>& change,
                                     bool event, const v1::TaskResult* result, bool persist) {
  std::string record;
  {
    absl::MutexLock lock(&mu);
    change(job.evaluation);
    if (event) {
      v1::EvaluationEvent e;
      *e.mutable_time() = TimeUtil::GetCurrentTime();
      e.set_state(job.evaluation.state());
      *e.mutable_progress() = job.evaluation.progress();
      if (result != nullptr) *e.mutable_result() = *result;
      job.events.push_back(std::move(e));
    }
    ++job.version;
    if (persist) record = job.evaluation.SerializeAsString();
    changed.SignalAll();
  }
  if (persist) {
    const absl::Status stored = store->PutEvaluation(job.evaluation.evaluation_id(), record);
    if (!stored.ok()) PROLONG_LOG(ERROR) << "storing an evaluation: " << stored;
  }
}

absl::StatusOr<std::shared_ptr<EvaluationRunner>> EvaluatorService::State::Runner(
    const v1::EvaluateRequest& request) {
  const std::string key = absl::StrCat(request.checkpoint_path(), "\n", request.tokenizer().path(),
                                       "\n", request.tokenizer().preset());
  for (auto it = runners.begin(); it != runners.end(); ++it) {
    if (it->first == key) {
      runners.splice(runners.begin(), runners, it);
      return it->second;
    }
  }
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer = tokenizer::LoadTokenizer(
      request.tokenizer().path(), PresetName(request.tokenizer().preset()));
  if (!tokenizer.ok()) return Annotate(tokenizer.status(), "tokenizer");
  RunnerOptions runner_options;
  runner_options.device = options.device;
  runner_options.data_dir = options.data_dir;
  runner_options.batch = options.batch;
  runner_options.prefill_chunk = options.prefill_chunk;
  // Drop the least recently used before loading, so that at most max_loaded_models are held.
  while (static_cast<int>(runners.size()) >= options.max_loaded_models) runners.pop_back();
  ASSIGN_OR_RETURN(std::shared_ptr<EvaluationRunner> runner,
                   EvaluationRunner::Create(request.checkpoint_path(), *std::move(tokenizer),
                                            store.get(), runner_options));
  runners.emplace_front(key, runner);
  return runner;
}

absl::Status EvaluatorService::State::RunJob(const std::shared_ptr<Job>& job) {
  ASSIGN_OR_RETURN(std::shared_ptr<EvaluationRunner> runner, Runner(job->request));
  RETURN_IF_ERROR(runner->CheckSpec(job->request.spec()));
  Update(
      *job, [&](v1::Evaluation& e) { e.set_model_fingerprint(runner->model_fingerprint()); }, false,
      nullptr, true);
  int64_t examples_seen = -1, tokens_seen = 0;
  const v1::EvaluateRequest& request = job->request;
  absl::StatusOr<EvaluationResults> results = runner->Run(
      request.spec(),
      [&](const Progress& progress, const v1::TaskResult* finished) {
        if (examples_seen >= 0 && progress.examples_done > examples_seen) {
          metrics.examples.Increment(static_cast<double>(progress.examples_done - examples_seen));
        }
        examples_seen = progress.examples_done;
        metrics.tokens.Increment(static_cast<double>(progress.tokens_generated - tokens_seen));
        tokens_seen = progress.tokens_generated;
        if (progress.seconds > 0) {
          metrics.tokens_per_second.Set(static_cast<double>(progress.tokens_generated) /
                                        progress.seconds);
        }
        if (finished != nullptr) {
          const auto metric = finished->metrics().find(finished->primary_metric());
          if (metric != finished->metrics().end()) {
            metrics.score
                .Add({{"run", request.run_id()},
                      {"stage", request.stage()},
                      {"step", absl::StrCat(request.step())},
                      {"task", finished->task()},
                      {"length", absl::StrCat(finished->input_length())}})
                .Set(metric->second);
          }
        }
        Update(
            *job,
            [&](v1::Evaluation& e) {
              v1::EvaluationProgress* p = e.mutable_progress();
              p->set_examples_done(progress.examples_done);
              p->set_examples_total(progress.examples_total);
              p->set_tokens_generated(progress.tokens_generated);
              if (finished != nullptr) *e.add_results() = *finished;
            },
            finished != nullptr, finished, finished != nullptr);
      },
      &job->cancelled);
  RETURN_IF_ERROR(results.status());
  Update(
      *job,
      [&](v1::Evaluation& e) {
        e.clear_category_scores();
        for (const v1::CategoryScore& score : results->category_scores) {
          *e.add_category_scores() = score;
        }
      },
      false, nullptr, false);
  return absl::OkStatus();
}

void EvaluatorService::State::Work() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu);
      while (!stopping && queue.empty()) changed.Wait(&mu);
      if (stopping) return;
      job = queue.front();
      queue.pop_front();
      running = job;
      metrics.queue_depth.Set(static_cast<double>(queue.size()));
    }
    Update(
        *job,
        [](v1::Evaluation& e) {
          e.set_state(v1::EVALUATION_STATE_RUNNING);
          e.clear_message();
        },
        true, nullptr, true);
    PROLONG_LOG(INFO) << "evaluating " << job->request.checkpoint_path() << " ("
                      << job->evaluation.evaluation_id() << ")";
    const absl::Status status = RunJob(job);
    bool shutting_down;
    {
      absl::MutexLock lock(&mu);
      running = nullptr;
      shutting_down = stopping;
    }
    if (absl::IsCancelled(status) && shutting_down) {
      // The next evaluator resumes it from the examples kept.
      Update(
          *job, [](v1::Evaluation& e) { e.set_state(v1::EVALUATION_STATE_PENDING); }, true, nullptr,
          true);
      return;
    }
    Update(
        *job,
        [&](v1::Evaluation& e) {
          e.set_state(status.ok() ? v1::EVALUATION_STATE_SUCCEEDED : v1::EVALUATION_STATE_FAILED);
          e.set_message(std::string(status.message()));
          *e.mutable_end_time() = TimeUtil::GetCurrentTime();
        },
        true, nullptr, true);
    if (!status.ok()) {
      PROLONG_LOG(WARNING) << "evaluation " << job->evaluation.evaluation_id()
                           << " failed: " << status;
    }
  }
}

EvaluatorService::EvaluatorService(std::unique_ptr<State> state) : state_(std::move(state)) {}

absl::StatusOr<std::unique_ptr<EvaluatorService>> EvaluatorService::Create(
    const EvaluatorServiceOptions& options, prometheus::Registry& registry) {
  if (options.max_queue < 1 || options.max_loaded_models < 1 || options.max_watches < 1) {
    return absl::InvalidArgumentError("max_queue, max_loaded_models and max_watches must be >= 1");
  }
  auto state = std::make_unique<State>(options, registry);
  ASSIGN_OR_RETURN(state->store, results::ResultStore::Open(options.store_dir));
  // Evaluations a previous process did not finish are queued again, oldest first.
  std::vector<std::shared_ptr<Job>> unfinished;
  RETURN_IF_ERROR(state->store->ScanEvaluations([&](absl::string_view, absl::string_view record) {
    auto job = std::make_shared<Job>();
    if (!job->evaluation.ParseFromArray(record.data(), static_cast<int>(record.size()))) return;
    v1::EvaluateRequest& request = job->request;
    request.set_checkpoint_path(job->evaluation.checkpoint_path());
    *request.mutable_tokenizer() = job->evaluation.tokenizer();
    *request.mutable_spec() = job->evaluation.spec();
    request.set_run_id(job->evaluation.run_id());
    request.set_stage(job->evaluation.stage());
    request.set_step(job->evaluation.step());
    if (!Finished(job->evaluation.state())) {
      job->evaluation.set_state(v1::EVALUATION_STATE_PENDING);
      unfinished.push_back(job);
    }
    absl::MutexLock lock(&state->mu);
    state->jobs[job->evaluation.evaluation_id()] = job;
  }));
  std::sort(unfinished.begin(), unfinished.end(), [](const auto& a, const auto& b) {
    return a->evaluation.create_time().seconds() < b->evaluation.create_time().seconds();
  });
  {
    absl::MutexLock lock(&state->mu);
    for (const auto& job : unfinished) state->queue.push_back(job);
    state->metrics.queue_depth.Set(static_cast<double>(state->queue.size()));
  }
  State* raw = state.get();
  state->worker = std::thread([raw] { raw->Work(); });
  return std::unique_ptr<EvaluatorService>(new EvaluatorService(std::move(state)));
}

EvaluatorService::~EvaluatorService() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
    if (state_->running != nullptr) state_->running->cancelled = true;
    state_->changed.SignalAll();
  }
  state_->worker.join();
}

grpc::Status EvaluatorService::Evaluate(grpc::ServerContext* context,
                                        const v1::EvaluateRequest* request,
                                        v1::Evaluation* response) {
  const absl::Status allowed = CheckBearerToken(*context, state_->options.auth_token);
  if (!allowed.ok()) return ToGrpcStatus(allowed);
  if (absl::Status checked = CheckRequest(*request); !checked.ok()) return ToGrpcStatus(checked);
  const std::string id = EvaluationId(*request);
  std::shared_ptr<Job> job;
  {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->jobs.find(id);
    if (it != state_->jobs.end() && it->second->evaluation.state() != v1::EVALUATION_STATE_FAILED) {
      *response = it->second->evaluation;
      return grpc::Status::OK;
    }
    if (static_cast<int>(state_->queue.size()) >= state_->options.max_queue) {
      return ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
          "the evaluation queue is full (", state_->options.max_queue, " waiting); try later")));
    }
    job = std::make_shared<Job>();
    job->request = *request;
    v1::Evaluation& e = job->evaluation;
    e.set_evaluation_id(id);
    e.set_state(v1::EVALUATION_STATE_PENDING);
    e.set_checkpoint_path(request->checkpoint_path());
    *e.mutable_tokenizer() = request->tokenizer();
    *e.mutable_spec() = request->spec();
    e.set_run_id(request->run_id());
    e.set_stage(request->stage());
    e.set_step(request->step());
    *e.mutable_create_time() = TimeUtil::GetCurrentTime();
    state_->jobs[id] = job;
    state_->queue.push_back(job);
    state_->metrics.queue_depth.Set(static_cast<double>(state_->queue.size()));
    *response = e;
  }
  state_->Update(
      *job, [](v1::Evaluation&) {}, true, nullptr, true);
  return grpc::Status::OK;
}

grpc::Status EvaluatorService::GetEvaluation(grpc::ServerContext*,
                                             const v1::GetEvaluationRequest* request,
                                             v1::Evaluation* response) {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->jobs.find(request->evaluation_id());
  if (it == state_->jobs.end()) {
    return ToGrpcStatus(absl::NotFoundError(
        absl::StrCat("no evaluation with evaluation_id \"", request->evaluation_id(), "\"")));
  }
  *response = it->second->evaluation;
  return grpc::Status::OK;
}

grpc::Status EvaluatorService::ListEvaluations(grpc::ServerContext*,
                                               const v1::ListEvaluationsRequest* request,
                                               v1::ListEvaluationsResponse* response) {
  if (request->page_size() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError("page_size must be >= 0"));
  }
  int64_t offset = 0;
  if (!request->page_token().empty() &&
      (!absl::SimpleAtoi(request->page_token(), &offset) || offset < 0)) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("page_token \"", request->page_token(), "\" is not one this service gave")));
  }
  std::vector<v1::Evaluation> matching;
  {
    absl::MutexLock lock(&state_->mu);
    for (const auto& [id, job] : state_->jobs) {
      if (request->run_id().empty() || job->evaluation.run_id() == request->run_id()) {
        matching.push_back(job->evaluation);
      }
    }
  }
  std::sort(matching.begin(), matching.end(), [](const v1::Evaluation& a, const v1::Evaluation& b) {
    const auto key = [](const v1::Evaluation& e) {
      return std::make_pair(e.create_time().seconds(), e.create_time().nanos());
    };
    if (key(a) != key(b)) return key(a) > key(b);  // newest first
    return a.evaluation_id() < b.evaluation_id();
  });
  const int64_t size = request->page_size() == 0 ? 100 : request->page_size();
  for (int64_t i = offset; i < static_cast<int64_t>(matching.size()) && i < offset + size; ++i) {
    *response->add_evaluations() = matching[i];
  }
  if (offset + size < static_cast<int64_t>(matching.size())) {
    response->set_next_page_token(absl::StrCat(offset + size));
  }
  return grpc::Status::OK;
}

grpc::Status EvaluatorService::WatchEvaluation(grpc::ServerContext* context,
                                               const v1::WatchEvaluationRequest* request,
                                               grpc::ServerWriter<v1::EvaluationEvent>* writer) {
  absl::StatusOr<CallSlots::Slot> slot = state_->watches.Take();
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  std::shared_ptr<Job> job;
  {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->jobs.find(request->evaluation_id());
    if (it == state_->jobs.end()) {
      return ToGrpcStatus(absl::NotFoundError(
          absl::StrCat("no evaluation with evaluation_id \"", request->evaluation_id(), "\"")));
    }
    job = it->second;
  }
  // The task results and state changes so far, where it stands, then every change until it
  // ends.
  size_t next_event = 0;
  int64_t seen_version = -1;
  while (!context->IsCancelled()) {
    std::vector<v1::EvaluationEvent> batch;
    bool done;
    {
      absl::MutexLock lock(&state_->mu);
      if (seen_version == job->version) {
        state_->changed.WaitWithTimeout(&state_->mu, absl::Milliseconds(200));
        if (seen_version == job->version) continue;
      }
      for (; next_event < job->events.size(); ++next_event)
        batch.push_back(job->events[next_event]);
      if (batch.empty() || seen_version < 0) {
        v1::EvaluationEvent now;
        *now.mutable_time() = TimeUtil::GetCurrentTime();
        now.set_state(job->evaluation.state());
        *now.mutable_progress() = job->evaluation.progress();
        batch.push_back(now);
      }
      seen_version = job->version;
      done = Finished(job->evaluation.state());
    }
    for (const v1::EvaluationEvent& event : batch) {
      if (!writer->Write(event)) return grpc::Status::OK;  // the client left
    }
    if (done) return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

}  // namespace prolong::evaluator
