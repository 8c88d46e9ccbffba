#include "evaluator/results/result_store.h"

#include <string>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::evaluator::results {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

ResultKey Key(const std::string& task, int64_t length, const std::string& config = "c1") {
  return {"f00d", task, length, config};
}

TEST(ResultStoreTest, ExamplesAndSummariesSurviveReopening) {
  const std::string dir = prolong::testing::MakeTempDir() + "/results";
  {
    ASSERT_OK_AND_ASSIGN(auto store, ResultStore::Open(dir));
    // Out of order, and one index above 255 (big-endian keys sort by value).
    ASSERT_OK(store->PutExample(Key("json_kv", 8192), 300, "{\"i\": 300}"));
    ASSERT_OK(store->PutExample(Key("json_kv", 8192), 2, "{\"i\": 2}"));
    ASSERT_OK(store->PutExample(Key("json_kv", 8192), 0, "{\"i\": 0}"));
    ASSERT_OK(store->PutExample(Key("json_kv", 16384), 0, "other length"));
    ASSERT_OK(store->PutExample(Key("json_kv", 8192, "c2"), 0, "other config"));
    ASSERT_OK(store->PutSummary(Key("json_kv", 8192), "{\"substring_exact_match\": 50}"));
    ASSERT_OK(store->PutSummary(Key("nq", 8192), "{\"substring_exact_match\": 20}"));
  }
  ASSERT_OK_AND_ASSIGN(auto store, ResultStore::Open(dir));
  ASSERT_OK_AND_ASSIGN(const auto examples, store->Examples(Key("json_kv", 8192)));
  EXPECT_THAT(examples,
              ElementsAre(Pair(0, "{\"i\": 0}"), Pair(2, "{\"i\": 2}"), Pair(300, "{\"i\": 300}")));
  ASSERT_OK_AND_ASSIGN(const auto none, store->Examples(Key("json_kv", 32768)));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(const auto summary, store->Summary(Key("json_kv", 8192)));
  EXPECT_EQ(summary, "{\"substring_exact_match\": 50}");
  ASSERT_OK_AND_ASSIGN(const auto missing, store->Summary(Key("json_kv", 8192, "c9")));
  EXPECT_EQ(missing, std::nullopt);

  std::vector<std::pair<std::string, int64_t>> seen;
  ASSERT_OK(store->ScanSummaries("f00d", [&](const ResultKey& key, absl::string_view) {
    EXPECT_EQ(key.model_fingerprint, "f00d");
    EXPECT_EQ(key.config_hash, "c1");
    seen.emplace_back(key.task, key.input_length);
  }));
  EXPECT_THAT(seen, ElementsAre(Pair("json_kv", 8192), Pair("nq", 8192)));
  int others = 0;
  ASSERT_OK(store->ScanSummaries("f00", [&](const ResultKey&, absl::string_view) { ++others; }));
  EXPECT_EQ(others, 0);  // a prefix of a fingerprint is another fingerprint
}

TEST(ResultStoreTest, EvaluationsByIdAndInOrder) {
  ASSERT_OK_AND_ASSIGN(auto store, ResultStore::Open(prolong::testing::MakeTempDir() + "/r"));
  ASSERT_OK(store->PutEvaluation("e2", "two"));
  ASSERT_OK(store->PutEvaluation("e1", "one"));
  ASSERT_OK(store->PutEvaluation("e2", "two again"));
  ASSERT_OK_AND_ASSIGN(const auto two, store->Evaluation("e2"));
  EXPECT_EQ(two, "two again");
  std::vector<std::string> ids;
  ASSERT_OK(store->ScanEvaluations(
      [&](absl::string_view id, absl::string_view) { ids.emplace_back(id); }));
  EXPECT_THAT(ids, ElementsAre("e1", "e2"));
}

TEST(ResultStoreTest, BadKeysAndASecondWriterAreRefused) {
  const std::string dir = prolong::testing::MakeTempDir() + "/results";
  ASSERT_OK_AND_ASSIGN(auto store, ResultStore::Open(dir));
  EXPECT_THAT(store->PutExample(Key("", 8192), 0, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("task must be non-empty")));
  EXPECT_THAT(store->PutExample(Key("nq", -1), 0, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input_length")));
  EXPECT_THAT(store->PutExample(Key("nq", 1), -3, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("example index -3")));
  EXPECT_THAT(store->PutSummary({std::string("a\0b", 3), "nq", 1, "c"}, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model_fingerprint")));
  EXPECT_THAT(ResultStore::Open(dir),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("in use")));
  EXPECT_THAT(ResultStore::Open(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace prolong::evaluator::results
