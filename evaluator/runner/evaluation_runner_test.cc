#include "evaluator/runner/evaluation_runner.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "evaluator/metrics/helmet_output.h"
#include "evaluator/results/result_store.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong::evaluator {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

// A tiny random Llama whose vocabulary holds the test tokenizer's, saved as a Hugging Face
// model directory.
std::string SaveTinyModel(const tokenizer::Tokenizer& tokenizer, const std::string& dir) {
  model::LlamaConfig config = model::testing::TinyLlamaConfig();
  config.vocab_size = tokenizer.vocab_size();
  config.max_position_embeddings = 2048;
  config.eos_token_ids = {};
  auto llama = *model::CreateLlama(config, 5);
  EXPECT_OK(model::SaveLlama(*llama, dir));
  return dir;
}

v1::EvaluationSpec JsonKvSpec(int examples) {
  v1::EvaluationSpec spec;
  v1::EvalTask* task = spec.add_tasks();
  task->set_name("json_kv");
  task->add_input_lengths(1024);
  task->set_num_examples(examples);
  return spec;
}

class EvaluationRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = prolong::testing::MakeTempDir();
    tokenizer_ = tasks::internal::Llama3TestTokenizer();
    checkpoint_ = SaveTinyModel(*tokenizer_, root_ + "/model");
    ASSERT_OK_AND_ASSIGN(store_, results::ResultStore::Open(root_ + "/results"));
  }

  std::unique_ptr<EvaluationRunner> Runner(const std::string& out_dir = "") {
    RunnerOptions options;
    options.device = "cpu";
    options.out_dir = out_dir;
    options.batch = 2;
    options.prefill_chunk = 512;
    auto runner = EvaluationRunner::Create(checkpoint_, tokenizer_, store_.get(), options);
    EXPECT_OK(runner);
    return *std::move(runner);
  }

  std::string root_;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  std::string checkpoint_;
  std::unique_ptr<results::ResultStore> store_;
};

TEST_F(EvaluationRunnerTest, ScoresEveryExampleAndWritesHelmetsOutputFile) {
  const std::string out = root_ + "/out";
  auto runner = Runner(out);
  EXPECT_EQ(runner->model_fingerprint().size(), 64u);
  std::vector<Progress> seen;
  int finished = 0;
  ASSERT_OK_AND_ASSIGN(const EvaluationResults results,
                       runner->Run(JsonKvSpec(3), [&](const Progress& p, const v1::TaskResult* r) {
                         seen.push_back(p);
                         finished += r != nullptr;
                       }));
  ASSERT_EQ(results.results.size(), 1u);
  const v1::TaskResult& result = results.results[0];
  EXPECT_EQ(result.task(), "json_kv");
  EXPECT_EQ(result.category(), "recall");
  EXPECT_EQ(result.input_length(), 1024);
  EXPECT_EQ(result.num_examples(), 3);
  EXPECT_EQ(result.primary_metric(), "substring_exact_match");
  ASSERT_EQ(result.metrics().count("substring_exact_match"), 1u);
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(seen.back().examples_done, 3);
  EXPECT_EQ(seen.back().examples_total, 3);
  EXPECT_GT(seen.back().tokens_generated, 0);
  ASSERT_EQ(results.category_scores.size(), 2u);  // recall at 1024, and over lengths
  EXPECT_EQ(results.category_scores[0].score(), result.metrics().at("substring_exact_match"));

  // The output file holds every example's output, and HELMET's rescoring of it gives the
  // evaluation's numbers.
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path().string());
  }
  ASSERT_EQ(files.size(), 1u);
  EXPECT_THAT(files[0], HasSubstr("json_kv_eval_"));
  ASSERT_OK_AND_ASSIGN(const metrics::RescoreResult rescored, metrics::Rescore(files[0]));
  ASSERT_EQ(rescored.output.data.size(), 3u);
  for (const auto& example : rescored.output.data) {
    EXPECT_TRUE(example.contains("output")) << example.dump();
    EXPECT_GT(example["input_len"].get<int64_t>(), 500);
    EXPECT_LE(example["input_len"].get<int64_t>() + example["output_len"].get<int64_t>(), 1024);
  }
  for (const auto& [name, value] : rescored.output.averaged_metrics) {
    EXPECT_DOUBLE_EQ(result.metrics().at(name), value) << name;
  }
}

TEST_F(EvaluationRunnerTest, ASecondRunResumesFromTheStoreAndGeneratesNothing) {
  ASSERT_OK_AND_ASSIGN(const EvaluationResults first, Runner()->Run(JsonKvSpec(3)));
  Progress last;
  ASSERT_OK_AND_ASSIGN(
      const EvaluationResults again,
      Runner()->Run(JsonKvSpec(3), [&](const Progress& p, const v1::TaskResult*) { last = p; }));
  EXPECT_EQ(last.tokens_generated, 0);
  EXPECT_EQ(last.examples_done, 3);
  EXPECT_EQ(again.results[0].DebugString(), first.results[0].DebugString());
}

TEST_F(EvaluationRunnerTest, ACancelledRunKeepsWhatItScoredAndTheNextOneFinishesIt) {
  std::atomic<bool> cancel{false};
  auto runner = Runner();
  EXPECT_THAT(runner->Run(
                  JsonKvSpec(4),
                  [&](const Progress& p, const v1::TaskResult*) {
                    if (p.examples_done >= 2) cancel = true;
                  },
                  &cancel),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("examples are kept")));
  std::vector<Progress> seen;
  ASSERT_OK_AND_ASSIGN(const EvaluationResults results,
                       runner->Run(JsonKvSpec(4), [&](const Progress& p, const v1::TaskResult*) {
                         seen.push_back(p);
                       }));
  EXPECT_EQ(results.results[0].num_examples(), 4);
  // The first batch of two was kept: the run starts with two done and generates the others.
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen.front().examples_done, 2);
  EXPECT_EQ(seen.front().tokens_generated, 0);
  EXPECT_EQ(seen.back().examples_done, 4);
  // A run from a fresh runner over the same store scores the same.
  ASSERT_OK_AND_ASSIGN(const EvaluationResults again, Runner()->Run(JsonKvSpec(4)));
  EXPECT_EQ(again.results[0].DebugString(), results.results[0].DebugString());
}

TEST_F(EvaluationRunnerTest, BadSpecsAndCheckpointsAreRefused) {
  auto runner = Runner();
  v1::EvaluationSpec spec = JsonKvSpec(1);
  spec.mutable_tasks(0)->set_name("json_kw");
  EXPECT_THAT(runner->CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("json_kv")));
  spec = JsonKvSpec(1);
  spec.mutable_tasks(0)->set_input_lengths(0, 4096);
  EXPECT_THAT(runner->CheckSpec(spec),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("input length 4096 is beyond the model's maximum 2048")));
  EXPECT_THAT(runner->CheckSpec(v1::EvaluationSpec()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("spec.tasks is empty")));

  RunnerOptions options;
  options.device = "cpu";
  EXPECT_THAT(EvaluationRunner::Create(root_ + "/absent", tokenizer_, store_.get(), options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent")));
}

}  // namespace
}  // namespace prolong::evaluator
