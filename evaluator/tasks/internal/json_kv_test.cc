// JSON KV as HELMET builds it: pair counts, depths, the gold pair, determinism.
#include "evaluator/tasks/internal/json_kv.h"

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks::internal {
namespace {

using ::testing::ElementsAre;

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

JsonKvOptions Options(int pairs, int samples, uint64_t seed) {
  JsonKvOptions options;
  options.num_pairs = pairs;
  options.num_samples = samples;
  options.seed = seed;
  return options;
}

TEST(JsonKvTest, SameSeedSameBytesOtherSeedOtherBytes) {
  ASSERT_OK_AND_ASSIGN(auto first, GenerateJsonKv(Options(105, 4, 42)));
  ASSERT_OK_AND_ASSIGN(auto again, GenerateJsonKv(Options(105, 4, 42)));
  ASSERT_OK_AND_ASSIGN(auto other, GenerateJsonKv(Options(105, 4, 43)));
  ASSERT_EQ(first.size(), 4u);
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].dump(), again[i].dump());
    EXPECT_NE(first[i]["context"], other[i]["context"]);
    EXPECT_NE(first[i]["answer"], other[i]["answer"]);
  }
}

TEST(JsonKvTest, HelmetPairCountsAndLayout) {
  const std::regex uuid4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (int pairs : {105, 220, 440, 900, 1800}) {
    ASSERT_OK_AND_ASSIGN(auto examples, GenerateJsonKv(Options(pairs, 1, 7)));
    const std::string context = examples[0]["context"];
    // lost-in-the-middle's layout: '{"k": "v",\n "k": "v",\n ... "k": "v"}'.
    EXPECT_TRUE(absl::StartsWith(context, "JSON data:\n{\""));
    EXPECT_TRUE(absl::EndsWith(context, "\"}"));
    EXPECT_EQ(Count(context, "\": \""), static_cast<size_t>(pairs));
    EXPECT_EQ(Count(context, ",\n \""), static_cast<size_t>(pairs - 1));
    EXPECT_EQ(examples[0]["num_kvs"], pairs);
    const std::string answer = examples[0]["answer"];
    EXPECT_TRUE(std::regex_match(answer, uuid4)) << answer;
  }
}

TEST(JsonKvTest, GoldPairSitsAtSixEvenlySpacedDepths) {
  ASSERT_OK_AND_ASSIGN(auto examples, GenerateJsonKv(Options(105, 12, 1)));
  std::vector<int> golds;
  for (const Record& example : examples) golds.push_back(example["gold_index"]);
  EXPECT_THAT(golds, ElementsAre(0, 21, 42, 62, 83, 104, 0, 21, 42, 62, 83, 104));
  for (const Record& example : examples) {
    const std::string context = example["context"];
    const std::string question = example["question"];  // The key, quoted.
    const std::string answer = example["answer"];
    // The queried pair appears once, as the gold_index-th pair, with its value.
    EXPECT_EQ(Count(context, question), 1u);
    const size_t at = context.find(absl::StrCat(question, ": \"", answer, "\""));
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(Count(context.substr(0, at), "\": \""), static_cast<size_t>(example["gold_index"]));
    EXPECT_DOUBLE_EQ(example["depth"].get<double>(), example["gold_index"].get<double>() / 104);
  }
}

TEST(JsonKvTest, DemosAreOtherPairsOfTheSameObject) {
  ASSERT_OK_AND_ASSIGN(auto examples, GenerateJsonKv(Options(20, 3, 5)));
  for (const Record& example : examples) {
    const std::string context = example["context"];
    ASSERT_EQ(example["demo_pairs"].size(), 2u);
    std::string demos;
    for (const auto& pair : example["demo_pairs"]) {
      const std::string key = pair[0], value = pair[1];
      EXPECT_NE(key, example["question"]);
      EXPECT_NE(context.find(absl::StrCat(key, ": \"", value, "\"")), std::string::npos);
      absl::StrAppend(&demos, demos.empty() ? "" : "\n\n", "Key: ", key,
                      "\nCorresponding value: ", value);
    }
    EXPECT_EQ(example["demos"], demos + "\n\n");
  }
}

TEST(JsonKvTest, TooFewPairsIsAnError) {
  EXPECT_THAT(GenerateJsonKv(Options(3, 1, 1)),
              prolong::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace prolong::evaluator::tasks::internal
