// From a task name to prompts, through LoadTask and PrepareTask.
#include "evaluator/tasks/load_task.h"

#include "absl/strings/match.h"
#include "common/status_matchers.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "evaluator/tasks/tasks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kTestdata[] = "evaluator/tasks/testdata";

class LoadTaskTest : public ::testing::Test {
 protected:
  LoadOptions Options(const std::string& test_file = "", const std::string& demo_file = "") {
    LoadOptions options;
    options.data_dir = kTestdata;
    options.test_file = test_file;
    options.demo_file = demo_file;
    return options;
  }

  std::unique_ptr<tokenizer::Tokenizer> tokenizer_ = internal::Llama3TestTokenizer();
};

TEST_F(LoadTaskTest, PrepareTaskTurnsANameIntoPrompts) {
  PromptOptions prompt_options;
  prompt_options.model_max_length = 4096;
  ASSERT_OK_AND_ASSIGN(PreparedTask task,
                       PrepareTask("json_kv", 1024, Options(), *tokenizer_, prompt_options));
  EXPECT_EQ(task.config.num_items, 13);  // 50 pairs at 4K, scaled to 1K (12.5, rounded up).
  ASSERT_EQ(task.prompts.size(), 100u);  // HELMET's max_test_samples.
  for (const Prompt& prompt : task.prompts) {
    EXPECT_LE(prompt.input_ids.size(), 1024u - 100u);
    EXPECT_FALSE(prompt.record.contains("context"));
    EXPECT_TRUE(prompt.record["answer"].is_string());
  }

  ASSERT_OK_AND_ASSIGN(
      task, PrepareTask("kilt_nq", 8192, Options("kilt/nq_test.jsonl", "kilt/nq_demos.jsonl"),
                        *tokenizer_, {}));
  EXPECT_EQ(task.prompts.size(), 4u);
  EXPECT_EQ(task.report.records_skipped, 2);
  EXPECT_EQ(task.templates.system, "Answer:");
}

TEST_F(LoadTaskTest, TheSameSeedGivesTheSamePrompts) {
  LoadOptions options = Options();
  options.max_samples = 5;
  ASSERT_OK_AND_ASSIGN(PreparedTask first,
                       PrepareTask("ruler_niah_mv", 4096, options, *tokenizer_, {}));
  ASSERT_OK_AND_ASSIGN(PreparedTask again,
                       PrepareTask("ruler_niah_mv", 4096, options, *tokenizer_, {}));
  options.seed = 7;
  ASSERT_OK_AND_ASSIGN(PreparedTask other,
                       PrepareTask("ruler_niah_mv", 4096, options, *tokenizer_, {}));
  ASSERT_EQ(first.prompts.size(), 5u);
  for (size_t i = 0; i < first.prompts.size(); ++i) {
    EXPECT_EQ(first.prompts[i].text, again.prompts[i].text);
    EXPECT_EQ(first.prompts[i].input_ids, again.prompts[i].input_ids);
    EXPECT_NE(first.prompts[i].text, other.prompts[i].text);
  }
}

TEST_F(LoadTaskTest, ErrorsNameWhatIsWrong) {
  EXPECT_THAT(PrepareTask("kilt_bogus", 8192, Options(), *tokenizer_, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("valid tasks: json_kv")));
  // The registry's file is not among the fixtures.
  EXPECT_THAT(PrepareTask("kilt_nq", 8192, Options(), *tokenizer_, {}),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("kilt/nq-dev-multikilt_1000_k50_dep6.jsonl")));
  LoadOptions strict = Options("kilt/nq_test.jsonl", "kilt/nq_demos.jsonl");
  strict.strict = true;
  EXPECT_THAT(PrepareTask("kilt_nq", 8192, strict, *tokenizer_, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nq_test.jsonl:3:")));
  LoadOptions no_essay = Options();
  no_essay.essay_file = "ruler/none.json";
  EXPECT_THAT(PrepareTask("ruler_niah_mv", 2048, no_essay, *tokenizer_, {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("none.json")));
}

TEST_F(LoadTaskTest, EveryFileTaskLoadsItsFixture) {
  struct Case {
    const char* task;
    const char* test_file;
    const char* demo_file;
    size_t examples;
  };
  const Case cases[] = {
      {"kilt_popqa", "kilt/popqa_test.jsonl", "kilt/popqa_test.jsonl", 3},
      {"msmarco_rerank_psg", "msmarco/rerank_test.jsonl", "msmarco/rerank_demos.jsonl", 3},
      {"icl_trec_fine", "icl/trec/test.jsonl", "icl/trec/train.jsonl", 5},
  };
  for (const Case& c : cases) {
    ASSERT_OK_AND_ASSIGN(TaskConfig config, ResolveTask(c.task, 8192));
    if (config.kind == TaskKind::kIcl) config.shots = 12;
    LoadOptions options = Options(c.test_file, c.demo_file);
    ASSERT_OK_AND_ASSIGN(TaskData data, LoadTask(config, options, *tokenizer_));
    EXPECT_EQ(data.examples.size(), c.examples) << c.task;
    for (const Record& example : data.examples) {
      ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, example, *tokenizer_, {}));
      EXPECT_TRUE(prompt.record.contains("answer")) << c.task;
    }
  }
  // Long documents: HELMET's thresholds are far above the fixtures' lengths.
  for (const char* task : {"narrativeqa", "infbench_qa_eng", "multi_lexsum"}) {
    ASSERT_OK_AND_ASSIGN(TaskConfig config, ResolveTask(task, 8192));
    config.min_context_tokens = 10;
    ASSERT_OK_AND_ASSIGN(TaskData data, LoadTask(config, Options(), *tokenizer_));
    EXPECT_GE(data.examples.size(), 2u) << task;
    ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, {}));
    EXPECT_TRUE(prompt.chat_template) << task;
    EXPECT_TRUE(absl::StartsWith(prompt.text, "<|begin_of_text|><|start_header_id|>user"));
  }
}

}  // namespace
}  // namespace prolong::evaluator::tasks
