// The evaluator as a real process over gRPC: an evaluation queued, watched to its end, read
// back, listed, exported to Prometheus; bad requests refused with their field named; and an
// evaluator stopped mid-run resuming the evaluation when it starts again on its store.

#include <signal.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "tests/capped_streams.h"
#include "tests/subprocess.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong {
namespace {

using ::testing::HasSubstr;
using testing::Subprocess;

constexpr char kEvaluator[] = "services/evaluator/evaluator";

struct Evaluator {
  std::unique_ptr<Subprocess> process;
  std::string address;
  std::string metrics_address;
  std::unique_ptr<v1::Evaluator::Stub> stub;
};

Evaluator StartEvaluator(const std::string& store, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {kEvaluator, "--address=127.0.0.1:0",
                                   "--metrics-address=127.0.0.1:0", "--store=" + store,
                                   "--device=cpu"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Evaluator evaluator;
  auto process = Subprocess::Start(argv);
  EXPECT_OK(process);
  evaluator.process = *std::move(process);
  auto line = evaluator.process->ReadStdoutLine(absl::Seconds(60));
  EXPECT_OK(line) << evaluator.process->Stderr();
  if (!line.ok()) return evaluator;
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "grpc=")) evaluator.address = std::string(field);
    if (absl::ConsumePrefix(&field, "metrics=")) evaluator.metrics_address = std::string(field);
  }
  evaluator.stub = v1::Evaluator::NewStub(
      grpc::CreateChannel(evaluator.address, grpc::InsecureChannelCredentials()));
  return evaluator;
}

class EvaluatorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    std::ofstream(dir_ + "/tiny.tiktoken", std::ios::binary)
        << tokenizer::ByteRankFile({"ab", "e ", "th"});
    model::LlamaConfig config = model::testing::TinyLlamaConfig();
    config.vocab_size = 128256;  // Llama 3's, which the preset's special tokens need
    config.max_position_embeddings = 2048;
    config.eos_token_ids = {};
    ASSERT_OK(model::SaveLlama(*model::CreateLlama(config, 9).value(), dir_ + "/model"));
  }

  v1::EvaluateRequest Request(int examples, const std::string& run = "r1") {
    v1::EvaluateRequest request;
    request.set_checkpoint_path(dir_ + "/model");
    request.mutable_tokenizer()->set_path(dir_ + "/tiny.tiktoken");
    request.mutable_tokenizer()->set_preset(v1::TOKENIZER_PRESET_LLAMA3);
    v1::EvalTask* task = request.mutable_spec()->add_tasks();
    task->set_name("json_kv");
    task->add_input_lengths(1024);
    task->set_num_examples(examples);
    request.set_run_id(run);
    request.set_stage("stage1");
    request.set_step(12);
    return request;
  }

  std::string dir_;
};

v1::Evaluation Evaluate(v1::Evaluator::Stub& stub, const v1::EvaluateRequest& request) {
  grpc::ClientContext context;
  v1::Evaluation evaluation;
  const grpc::Status status = stub.Evaluate(&context, request, &evaluation);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return evaluation;
}

// The events until the evaluation ends (or `stop_after` returns true for one).
std::vector<v1::EvaluationEvent> Watch(
    v1::Evaluator::Stub& stub, const std::string& id,
    const std::function<bool(const v1::EvaluationEvent&)>& stop_after = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::WatchEvaluationRequest request;
  request.set_evaluation_id(id);
  auto reader = stub.WatchEvaluation(&context, request);
  std::vector<v1::EvaluationEvent> events;
  v1::EvaluationEvent event;
  while (reader->Read(&event)) {
    events.push_back(event);
    if (stop_after && stop_after(event)) {
      context.TryCancel();
      break;
    }
  }
  reader->Finish();
  return events;
}

TEST_F(EvaluatorServiceTest, AnEvaluationRunsToItsEndAndIsKept) {
  Evaluator evaluator = StartEvaluator(dir_ + "/results");
  const v1::Evaluation queued = Evaluate(*evaluator.stub, Request(2));
  EXPECT_THAT(queued.evaluation_id(), ::testing::StartsWith("ev-"));
  // Asking again is the same evaluation.
  EXPECT_EQ(Evaluate(*evaluator.stub, Request(2)).evaluation_id(), queued.evaluation_id());

  const std::vector<v1::EvaluationEvent> events = Watch(*evaluator.stub, queued.evaluation_id());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().state(), v1::EVALUATION_STATE_SUCCEEDED);
  int results = 0;
  for (const v1::EvaluationEvent& event : events) results += event.has_result();
  EXPECT_EQ(results, 1);

  grpc::ClientContext context;
  v1::GetEvaluationRequest get;
  get.set_evaluation_id(queued.evaluation_id());
  v1::Evaluation done;
  ASSERT_TRUE(evaluator.stub->GetEvaluation(&context, get, &done).ok());
  EXPECT_EQ(done.state(), v1::EVALUATION_STATE_SUCCEEDED) << done.message();
  ASSERT_EQ(done.results_size(), 1);
  EXPECT_EQ(done.results(0).num_examples(), 2);
  EXPECT_EQ(done.progress().examples_done(), 2);
  EXPECT_EQ(done.model_fingerprint().size(), 64u);
  ASSERT_FALSE(done.category_scores().empty());
  EXPECT_TRUE(done.has_end_time());

  grpc::ClientContext list_context;
  v1::ListEvaluationsRequest list;
  list.set_run_id("r1");
  v1::ListEvaluationsResponse listed;
  ASSERT_TRUE(evaluator.stub->ListEvaluations(&list_context, list, &listed).ok());
  ASSERT_EQ(listed.evaluations_size(), 1);
  grpc::ClientContext other_context;
  list.set_run_id("r2");
  ASSERT_TRUE(evaluator.stub->ListEvaluations(&other_context, list, &listed).ok());
  EXPECT_EQ(listed.evaluations_size(), 0);

  absl::StatusOr<std::string> metrics = HttpGet(evaluator.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  EXPECT_THAT(*metrics, HasSubstr("prolong_eval_score{"));
  EXPECT_THAT(*metrics, HasSubstr("task=\"json_kv\""));
  EXPECT_THAT(*metrics, HasSubstr("length=\"1024\""));
  EXPECT_THAT(*metrics, HasSubstr("run=\"r1\""));
  EXPECT_THAT(*metrics, HasSubstr("prolong_eval_examples_total 2"));
  EXPECT_THAT(*metrics, HasSubstr("prolong_eval_queue_depth 0"));
}

TEST_F(EvaluatorServiceTest, BadRequestsNameTheField) {
  Evaluator evaluator = StartEvaluator(dir_ + "/results");
  auto code = [&](const v1::EvaluateRequest& request, std::string* message) {
    grpc::ClientContext context;
    v1::Evaluation evaluation;
    const grpc::Status status = evaluator.stub->Evaluate(&context, request, &evaluation);
    *message = status.error_message();
    return status.error_code();
  };
  std::string message;
  v1::EvaluateRequest request = Request(1);
  request.set_checkpoint_path(dir_ + "/absent");
  EXPECT_EQ(code(request, &message), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(message, HasSubstr("absent"));
  request = Request(1);
  request.mutable_spec()->mutable_tasks(0)->set_name("json_kw");
  EXPECT_EQ(code(request, &message), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("spec.tasks[0]"));
  request = Request(1);
  request.clear_tokenizer();
  EXPECT_EQ(code(request, &message), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(message, HasSubstr("tokenizer.path"));

  grpc::ClientContext context;
  v1::GetEvaluationRequest get;
  get.set_evaluation_id("ev-none");
  v1::Evaluation evaluation;
  const grpc::Status status = evaluator.stub->GetEvaluation(&context, get, &evaluation);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("ev-none"));
}

// Evaluations waiting beyond --max-queue and watch streams beyond --max-watches are refused with
// RESOURCE_EXHAUSTED, and a freed watch slot serves the next watcher.
TEST_F(EvaluatorServiceTest, QueuedEvaluationsAndWatchesBeyondTheirLimitsAreRefused) {
  Evaluator evaluator = StartEvaluator(dir_ + "/results", {"--max-queue=1", "--max-watches=1"});
  // One running (long), one waiting.
  const std::string running = Evaluate(*evaluator.stub, Request(500, "running")).evaluation_id();
  Watch(*evaluator.stub, running, [](const v1::EvaluationEvent& event) {
    return event.state() == v1::EVALUATION_STATE_RUNNING;
  });
  Evaluate(*evaluator.stub, Request(2, "waiting"));
  {
    grpc::ClientContext context;
    v1::Evaluation evaluation;
    const grpc::Status status =
        evaluator.stub->Evaluate(&context, Request(2, "refused"), &evaluation);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(status.error_message(), "the evaluation queue is full (1 waiting); try later");
  }

  v1::WatchEvaluationRequest watch;
  watch.set_evaluation_id(running);
  auto held_context = std::make_unique<grpc::ClientContext>();
  auto held = evaluator.stub->WatchEvaluation(held_context.get(), watch);
  v1::EvaluationEvent event;
  ASSERT_TRUE(held->Read(&event));
  const grpc::Status refused =
      testing::StatusWithoutMessages<v1::EvaluationEvent>([&](grpc::ClientContext& context) {
        return evaluator.stub->WatchEvaluation(&context, watch);
      });
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "already 1 WatchEvaluation streams (--max-watches) open, the most this server holds; "
            "retry later");
  held_context->TryCancel();
  held->Finish();
  // The server frees the slot once it sees the cancel (within its 200 ms wait); a client retries.
  EXPECT_TRUE(testing::FirstMessageWithin<v1::EvaluationEvent>(
      absl::Seconds(10),
      [&](grpc::ClientContext& context) {
        return evaluator.stub->WatchEvaluation(&context, watch);
      }))
      << "the freed slot serves the next watcher";
}

// Killed mid-run (no chance to clean up), the evaluator comes back on its store with the
// evaluation queued again and the examples it had scored kept.
TEST_F(EvaluatorServiceTest, AKilledEvaluatorResumesTheEvaluationOnRestart) {
  const std::string store = dir_ + "/results";
  std::string id;
  {
    Evaluator evaluator = StartEvaluator(store, {"--batch=1"});
    id = Evaluate(*evaluator.stub, Request(6)).evaluation_id();
    const auto events = Watch(*evaluator.stub, id, [](const v1::EvaluationEvent& event) {
      return event.progress().examples_done() >= 2;
    });
    ASSERT_FALSE(events.empty());
    evaluator.process->Signal(SIGKILL);
    ASSERT_OK(evaluator.process->Wait(absl::Seconds(60)));
  }
  Evaluator restarted = StartEvaluator(store, {"--batch=1"});
  const auto events = Watch(*restarted.stub, id);
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.front().state(), v1::EVALUATION_STATE_SUCCEEDED);
  EXPECT_EQ(events.back().state(), v1::EVALUATION_STATE_SUCCEEDED);
  // It started from the examples kept, not from nothing.
  int64_t first_done = -1;
  for (const v1::EvaluationEvent& event : events) {
    if (event.progress().examples_total() > 0) {
      first_done = event.progress().examples_done();
      break;
    }
  }
  EXPECT_GE(first_done, 2);
  EXPECT_LT(first_done, 6);
  grpc::ClientContext context;
  v1::GetEvaluationRequest get;
  get.set_evaluation_id(id);
  v1::Evaluation done;
  ASSERT_TRUE(restarted.stub->GetEvaluation(&context, get, &done).ok());
  ASSERT_EQ(done.results_size(), 1);
  EXPECT_EQ(done.results(0).num_examples(), 6);
}

}  // namespace
}  // namespace prolong
