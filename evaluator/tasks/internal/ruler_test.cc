// RULER's needles: how often each occurs, the golds, the length, determinism.
#include "evaluator/tasks/internal/ruler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/templates.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "evaluator/tasks/task_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace prolong::evaluator::tasks::internal {
namespace {

using ::prolong::testing::StatusIs;

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

class RulerTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::vector<Record>> Generate(const std::string& task, int64_t length,
                                               uint64_t seed, int samples = 3) {
    absl::StatusOr<TaskConfig> config = ResolveTask(task, length);
    if (!config.ok()) return config.status();
    RulerOptions options;
    absl::StatusOr<RulerNiahSpec> spec = RulerSpecFor(task);
    if (!spec.ok()) return spec.status();
    options.spec = *spec;
    options.max_seq_length = length;
    options.num_samples = samples;
    options.seed = seed;
    options.templates = TemplatesFor(*config);
    options.tokenizer = tokenizer_.get();
    absl::StatusOr<std::string> essay =
        ReadFile("evaluator/tasks/testdata/ruler/PaulGrahamEssays.json");
    if (!essay.ok()) return essay.status();
    options.essay = nlohmann::json::parse(*essay)["text"];
    return GenerateRulerNiah(options);
  }

  std::unique_ptr<tokenizer::Tokenizer> tokenizer_ = Llama3TestTokenizer();
};

TEST_F(RulerTest, MultiKeyNeedleHasOneGoldNeedleAmongDistractors) {
  ASSERT_OK_AND_ASSIGN(auto examples, Generate("ruler_niah_mk_2", 2048, 42));
  ASSERT_EQ(examples.size(), 3u);
  for (const Record& example : examples) {
    const std::string context = example["context"];
    const std::string key = example["query"];
    ASSERT_EQ(example["answer"].size(), 1u);
    const std::string value = example["answer"][0];
    EXPECT_EQ(value.size(), 7u);  // 7-digit numbers.
    EXPECT_EQ(example["type_needle_v"], "number");
    // The gold needle exactly once; its key nowhere else; its value nowhere else.
    EXPECT_EQ(Count(context, absl::StrCat("One of the special magic numbers for ", key,
                                          " is: ", value, ".")),
              1u);
    EXPECT_EQ(Count(context, absl::StrCat(" ", key, " ")), 1u);
    EXPECT_EQ(Count(context, value), 1u);
    // The haystack is distractor needles, one per line.
    for (absl::string_view line : absl::StrSplit(context, '\n')) {
      EXPECT_TRUE(absl::StartsWith(line, "One of the special magic numbers for ")) << line;
    }
    EXPECT_GT(Count(context, "\n"), 10u);
    EXPECT_LE(example["length"].get<int64_t>(), 2048);
    EXPECT_EQ(example["outputs"], example["answer"]);
  }
}

TEST_F(RulerTest, MultiKeyUuidUsesUuidKeysAndValues) {
  ASSERT_OK_AND_ASSIGN(auto examples, Generate("ruler_niah_mk_3", 3000, 11, 2));
  for (const Record& example : examples) {
    const std::string context = example["context"];
    const std::string key = example["query"];
    const std::string value = example["answer"][0];
    EXPECT_EQ(key.size(), 36u);
    EXPECT_EQ(value.size(), 36u);
    EXPECT_EQ(example["type_needle_v"], "uuid");
    EXPECT_EQ(Count(context,
                    absl::StrCat("One of the special magic uuids for ", key, " is: ", value, ".")),
              1u);
    EXPECT_EQ(Count(context, key), 1u);
  }
}

TEST_F(RulerTest, MultiValueHidesFourValuesOfOneKeyInTheEssay) {
  ASSERT_OK_AND_ASSIGN(auto examples, Generate("ruler_niah_mv", 4096, 42));
  for (const Record& example : examples) {
    const std::string context = example["context"];
    const std::string key = example["query"];
    EXPECT_EQ(example["type_needle_v"], "numbers");
    ASSERT_EQ(example["answer"].size(), 4u);
    EXPECT_EQ(Count(context, absl::StrCat("One of the special magic numbers for ", key, " is: ")),
              4u);
    for (const auto& value : example["answer"]) {
      EXPECT_EQ(Count(context, absl::StrCat("for ", key, " is: ", value.get<std::string>(), ".")),
                1u);
    }
    EXPECT_NE(context.find("Most good ideas look bad at first."), std::string::npos);
    EXPECT_LE(example["length"].get<int64_t>(), 4096);
  }
}

TEST_F(RulerTest, HaystackGrowsWithTheLength) {
  ASSERT_OK_AND_ASSIGN(auto small, Generate("ruler_niah_mk_2", 1024, 3, 1));
  ASSERT_OK_AND_ASSIGN(auto large, Generate("ruler_niah_mk_2", 4096, 3, 1));
  const int64_t small_length = small[0]["length"], large_length = large[0]["length"];
  EXPECT_GT(large_length, 2 * small_length);
  // As full as RULER makes it: within a few needles of the length.
  EXPECT_GT(large_length, 4096 - 100);
}

TEST_F(RulerTest, SameSeedSameBytesOtherSeedOtherBytes) {
  // RULER grows an essay haystack 500 words at a time, so MV needs a few thousand tokens.
  for (const char* task : {"ruler_niah_mk_2", "ruler_niah_mk_3", "ruler_niah_mv"}) {
    ASSERT_OK_AND_ASSIGN(auto first, Generate(task, 4096, 42, 2));
    ASSERT_OK_AND_ASSIGN(auto again, Generate(task, 4096, 42, 2));
    ASSERT_OK_AND_ASSIGN(auto other, Generate(task, 4096, 43, 2));
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_EQ(first[i].dump(), again[i].dump()) << task;
      EXPECT_NE(first[i]["context"], other[i]["context"]) << task;
    }
  }
}

TEST_F(RulerTest, TooShortALengthIsRefused) {
  EXPECT_THAT(Generate("ruler_niah_mk_2", 150, 42, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(RulerSpecFor("ruler_cwe"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace prolong::evaluator::tasks::internal
