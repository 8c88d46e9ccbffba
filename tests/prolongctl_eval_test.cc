// `prolongctl eval` as an operator runs it: a checkpoint scored on a HELMET task with its files
// written, resumed from the result store, gated against a baseline, and two evaluations
// compared, from files and from a real evaluator service by evaluation id.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "datamixer/store/store.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";
constexpr int64_t kLlama3Vocabulary = 128256;

class ProlongctlEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    ranks_ = dir_ + "/tiny.tiktoken";
    std::ofstream(ranks_, std::ios::binary) << tokenizer::ByteRankFile({"ab", "e ", "th"});
    model::LlamaConfig config = model::testing::TinyLlamaConfig();
    config.vocab_size = kLlama3Vocabulary;
    config.max_position_embeddings = 2048;
    config.eos_token_ids = {};
    ASSERT_OK(model::SaveLlama(*model::CreateLlama(config, 9).value(), dir_ + "/model"));
  }

  testing::RunResult Eval(std::vector<std::string> args) {
    args.insert(args.begin(), {kProlongctl, "eval"});
    absl::StatusOr<testing::RunResult> result = testing::Run(args, absl::Seconds(300));
    EXPECT_OK(result);
    return result.ok() ? *result : testing::RunResult{};
  }

  std::vector<std::string> RunArgs(const std::string& out) {
    return {"run",
            "--checkpoint",
            dir_ + "/model",
            "--tokenizer",
            ranks_,
            "--preset",
            "llama3",
            "--tasks",
            "json_kv",
            "--lengths",
            "1024",
            "--samples",
            "2",
            "--device",
            "cpu",
            "--results",
            dir_ + "/results",
            "--out",
            out};
  }

  // What `eval run` with RunArgs asks, as a request to the evaluator service.
  v1::EvaluateRequest Request(int samples) {
    v1::EvaluateRequest request;
    request.set_checkpoint_path(dir_ + "/model");
    request.mutable_tokenizer()->set_path(ranks_);
    request.mutable_tokenizer()->set_preset(v1::TOKENIZER_PRESET_LLAMA3);
    request.mutable_spec()->set_seed(42);
    v1::EvalTask* task = request.mutable_spec()->add_tasks();
    task->set_name("json_kv");
    task->add_input_lengths(1024);
    task->set_num_examples(samples);
    task->set_shots(-1);
    request.set_run_id("r1");
    request.set_stage("short");
    request.set_step(3);
    return request;
  }

  std::string dir_;
  std::string ranks_;
};

// Polls until the evaluation has ended; its last state.
v1::Evaluation AwaitEvaluation(v1::Evaluator::Stub& stub, const std::string& id) {
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  v1::Evaluation evaluation;
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    v1::GetEvaluationRequest request;
    request.set_evaluation_id(id);
    const grpc::Status status = stub.GetEvaluation(&context, request, &evaluation);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (!status.ok() || evaluation.state() == v1::EVALUATION_STATE_SUCCEEDED ||
        evaluation.state() == v1::EVALUATION_STATE_FAILED) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return evaluation;
}

TEST_F(ProlongctlEvalTest, ScoresResumesGatesAndCompares) {
  const testing::RunResult first = Eval(RunArgs(dir_ + "/first"));
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  EXPECT_THAT(first.stdout_text, HasSubstr("category"));
  EXPECT_THAT(first.stdout_text, HasSubstr("recall"));
  EXPECT_THAT(first.stdout_text, HasSubstr("json_kv @1K"));
  EXPECT_THAT(first.stderr_text, HasSubstr("2/2 examples"));
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/first/evaluation.json"));
  int helmet_files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/first")) {
    helmet_files += entry.path().filename().string().rfind("json_kv_eval_", 0) == 0;
  }
  EXPECT_EQ(helmet_files, 2);  // the output file and its .score

  // The same run again: every example comes from the result store; no drop against itself.
  std::vector<std::string> again = RunArgs(dir_ + "/second");
  again.insert(again.end(), {"--baseline", dir_ + "/first/evaluation.json", "--max-drop", "0"});
  const testing::RunResult second = Eval(again);
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  EXPECT_THAT(second.stderr_text, HasSubstr(" 0 tokens/s"));
  EXPECT_THAT(second.stderr_text, HasSubstr("no category fell more than 0 points"));

  // A baseline that scored higher: the gate names the category and length and exits 3.
  nlohmann::json baseline = nlohmann::json::parse(*ReadFile(dir_ + "/first/evaluation.json"));
  baseline["results"][0]["metrics"]["substring_exact_match"] = 100.0;
  ASSERT_OK(WriteFileAtomically(dir_ + "/better.json", baseline.dump()));
  std::vector<std::string> gated = RunArgs(dir_ + "/third");
  gated.insert(gated.end(), {"--baseline", dir_ + "/better.json", "--max-drop", "5"});
  const testing::RunResult third = Eval(gated);
  EXPECT_EQ(third.exit_code, 3) << third.stderr_text;
  EXPECT_THAT(third.stderr_text, HasSubstr("recall at 1024 tokens fell"));

  const testing::RunResult compared = Eval({"compare", dir_ + "/first", dir_ + "/better.json"});
  ASSERT_EQ(compared.exit_code, 0) << compared.stderr_text;
  EXPECT_THAT(compared.stdout_text, HasSubstr("json_kv @1K"));
  EXPECT_THAT(compared.stdout_text, HasSubstr("100.00"));
}

TEST_F(ProlongctlEvalTest, ComparesEvaluationsOfTheEvaluatorServiceById) {
  const testing::RunResult local = Eval(RunArgs(dir_ + "/local"));
  ASSERT_EQ(local.exit_code, 0) << local.stderr_text;
  // The service on the result store `eval run` filled scores the same checkpoint and spec from
  // it: the comparison is of equal results.
  absl::StatusOr<testing::ServiceProcess> evaluator =
      testing::StartService({testing::kEvaluatorBinary, "--store=" + dir_ + "/results",
                             "--device=cpu", "--address=127.0.0.1:0", "--metrics-address=off"});
  ASSERT_OK(evaluator);
  auto stub = v1::Evaluator::NewStub(
      grpc::CreateChannel(evaluator->address, grpc::InsecureChannelCredentials()));
  v1::Evaluation queued;
  {
    grpc::ClientContext context;
    const grpc::Status status = stub->Evaluate(&context, Request(2), &queued);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const std::string id = queued.evaluation_id();
  ASSERT_EQ(AwaitEvaluation(*stub, id).state(), v1::EVALUATION_STATE_SUCCEEDED)
      << evaluator->process->Stderr();

  const std::string with_evaluator = "--evaluator=" + evaluator->address;
  const testing::RunResult compared = Eval({"compare", with_evaluator, id, dir_ + "/local"});
  ASSERT_EQ(compared.exit_code, 0) << compared.stderr_text;
  EXPECT_THAT(compared.stdout_text, HasSubstr("A is evaluation " + id + "\n"));
  EXPECT_THAT(compared.stdout_text, Not(HasSubstr("B is")));
  EXPECT_THAT(compared.stdout_text, HasSubstr("A: " + dir_ + "/model\n"));
  EXPECT_THAT(compared.stdout_text, ContainsRegex("json_kv @1K +[0-9.]+ +[0-9.]+ +\\+0\\.00"));
  // Both operands from the service.
  const testing::RunResult itself = Eval({"compare", id, id, with_evaluator});
  ASSERT_EQ(itself.exit_code, 0) << itself.stderr_text;
  EXPECT_THAT(itself.stdout_text, HasSubstr("B is evaluation " + id + "\n"));
  // `eval show` prints one of them, as a table or as JSON with every task and length.
  const testing::RunResult shown = Eval({"show", id, with_evaluator});
  ASSERT_EQ(shown.exit_code, 0) << shown.stderr_text;
  EXPECT_THAT(shown.stdout_text, HasSubstr("evaluation " + id + "\n"));
  EXPECT_THAT(shown.stdout_text, HasSubstr("json_kv"));
  const testing::RunResult shown_json = Eval({"show", id, with_evaluator, "--json"});
  ASSERT_EQ(shown_json.exit_code, 0) << shown_json.stderr_text;
  EXPECT_THAT(shown_json.stdout_text, ContainsRegex("\"input_length\": \"?1024"));
  EXPECT_EQ(Eval({"show", "ev-0000", with_evaluator}).exit_code, 1);

  // An id the service does not hold; an id, or a run's checkpoint, without the services'
  // flags; an evaluator that cannot be reached (exit code 2).
  testing::RunResult failed = Eval({"compare", with_evaluator, "ev-0000", dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text, HasSubstr("evaluation ev-0000 (evaluator " + evaluator->address));
  EXPECT_THAT(failed.stderr_text, HasSubstr("no evaluation with evaluation_id"));
  failed = Eval({"compare", id, dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text, HasSubstr(id +
                                            ": no such file or directory; to compare "
                                            "evaluation " +
                                            id + " of the evaluator service, give --evaluator"));
  failed = Eval({"compare", "r1:short:3:after-sft", dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text,
              HasSubstr("r1:short:3:after-sft names a run's checkpoint (run r1: short step 3 "
                        "after SFT): give --scheduler HOST:PORT to find it and --evaluator"));
  failed = Eval({"compare", with_evaluator, "r1:short:3", dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text, HasSubstr("give --scheduler HOST:PORT to find it\n"));
  failed = Eval({"compare", with_evaluator, "r1:short:three", dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text, HasSubstr("step \"three\" of \"r1:short:three\""));
  failed = Eval({"compare", "--evaluator=127.0.0.1:1", id, dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 2) << failed.stderr_text;
  EXPECT_THAT(failed.stderr_text, HasSubstr("evaluator 127.0.0.1:1 unreachable"));

  // One still running (or queued) is not compared: part of its results would read as a
  // change in the model.
  v1::Evaluation running;
  {
    grpc::ClientContext context;
    const grpc::Status status = stub->Evaluate(&context, Request(400), &running);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  failed = Eval({"compare", with_evaluator, running.evaluation_id(), dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text,
              ContainsRegex("evaluation ev-[0-9a-f]+ is (pending|running) \\([0-9]+/[0-9]+ "
                            "examples\\); compare it once it has succeeded\n"));
}

// A run's checkpoint is looked up on a real scheduler: one it does not hold is named.
TEST_F(ProlongctlEvalTest, ARunCheckpointTheSchedulerDoesNotHold) {
  absl::StatusOr<testing::ServiceProcess> scheduler =
      testing::StartService({testing::kSchedulerBinary, "--state-dir=" + dir_ + "/scheduler",
                             "--address=127.0.0.1:0", "--metrics-address=off",
                             // Nothing is trained: any binary that exists will do.
                             "--trainer-binary=/bin/false"});
  ASSERT_OK(scheduler);
  const testing::RunResult failed =
      Eval({"compare", "--scheduler=" + scheduler->address, "--evaluator=127.0.0.1:1",
            "no-such-run:short:3", dir_ + "/local"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_THAT(failed.stderr_text,
              HasSubstr("run no-such-run (scheduler " + scheduler->address + "): "));
}

TEST_F(ProlongctlEvalTest, PositionLossByBucket) {
  {
    auto store = store::Store::OpenForWriting(dir_ + "/store", {"test", 128256});
    ASSERT_OK(store);
    std::vector<store::Document> documents;
    for (int d = 0; d < 3; ++d) {
      std::vector<uint32_t> tokens;
      for (int t = 0; t < 40 + 20 * d; ++t) tokens.push_back((t * 7 + d) % 300);
      documents.push_back({"books", absl::StrCat("books/", d), tokens, ""});
    }
    ASSERT_OK((*store)->shard().AddBatch(documents));
  }
  const std::vector<std::string> args = {"position-loss",
                                         "--checkpoint",
                                         dir_ + "/model",
                                         "--store",
                                         dir_ + "/store",
                                         "--domain",
                                         "books",
                                         "--max-length",
                                         "64",
                                         "--bucket",
                                         "16",
                                         "--device",
                                         "cpu"};
  const testing::RunResult table = Eval(args);
  ASSERT_EQ(table.exit_code, 0) << table.stderr_text;
  EXPECT_THAT(table.stdout_text, HasSubstr("3 documents of 'books'"));
  EXPECT_THAT(table.stdout_text, HasSubstr("48-64"));

  std::vector<std::string> json_args = args;
  json_args.push_back("--json");
  const testing::RunResult json = Eval(json_args);
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  const nlohmann::json parsed = nlohmann::json::parse(json.stdout_text);
  ASSERT_EQ(parsed["buckets"].size(), 4u);
  int64_t tokens = 0;
  for (const auto& bucket : parsed["buckets"]) tokens += bucket["tokens"].get<int64_t>();
  EXPECT_EQ(tokens, 39 + 59 + 63);  // every next token of the documents cut at 64
  EXPECT_GT(parsed["buckets"][0]["mean_loss"].get<double>(), 0);

  std::vector<std::string> other = args;
  other[6] = "code";  // --domain
  const testing::RunResult missing = Eval(other);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.stderr_text, HasSubstr("domain 'code' has no documents"));
}

TEST_F(ProlongctlEvalTest, BadInputIsOneLine) {
  std::vector<std::string> args = RunArgs(dir_ + "/out");
  args[8] = "json_kw";  // --tasks
  testing::RunResult result = Eval(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("json_kv"));
  args = RunArgs(dir_ + "/out");
  args[2] = dir_ + "/absent";  // --checkpoint
  result = Eval(args);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("absent: not a directory"));
  result = Eval({"compare", dir_ + "/nothing.json", dir_ + "/nothing.json"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.stderr_text, HasSubstr("nothing.json"));
}

}  // namespace
}  // namespace prolong
