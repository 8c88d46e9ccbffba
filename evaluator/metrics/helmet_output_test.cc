#include "evaluator/metrics/helmet_output.h"

#include <string>
#include <vector>

#include "common/file.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::evaluator::metrics {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kNq[] =
    "evaluator/metrics/testdata/"
    "kilt_nq_eval_nq-dev_in131072_size3_shots2_sampFalsemax20min0t0.0p1.0_chatFalse_42.json";
constexpr char kJsonKv[] =
    "evaluator/metrics/testdata/"
    "json_kv_eval_test_k2_dep6_in8192_size2_shots2_sampFalsemax100min0t0.0p1.0_chatFalse_42.json";
constexpr char kRerank[] =
    "evaluator/metrics/testdata/"
    "msmarco_rerank_psg_eval_test_reranking_data_k4_dep3_in8192_size2_shots2_sampFalsemax200min0t0."
    "0p1.0_chatFalse_42.json";

// Three NQ examples: exactly right; wrong; "the city of Paris" against [["Paris"],
// ["City of Light"]] (SubEM 1, F1 2/3, ROUGE-L F 4/7 and recall 1). Lengths 100/200/300 and
// 3/5/7. The file's own averages were written by NumPy.
TEST(RescoreTest, HelmetQaFileByHand) {
  ASSERT_OK_AND_ASSIGN(const RescoreResult result, Rescore(kNq));
  EXPECT_EQ(result.dataset.name, "kilt_nq");
  EXPECT_EQ(result.dataset.category, Category::kRag);
  ASSERT_EQ(result.output.data.size(), 3u);
  const MetricValues& averaged = result.output.averaged_metrics;
  EXPECT_THAT(
      averaged,
      ElementsAre(Pair("exact_match", 1.0 / 3 * 100), Pair("f1", (1 + 2.0 / 3) / 3 * 100),
                  Pair("substring_exact_match", 2.0 / 3 * 100),
                  Pair("rougeL_f1", (1 + 4.0 / 7) / 3 * 100), Pair("rougeL_recall", 2.0 / 3 * 100),
                  Pair("rougeLsum_f1", (1 + 4.0 / 7) / 3 * 100),
                  Pair("rougeLsum_recall", 2.0 / 3 * 100), Pair("input_len", 200.0),
                  Pair("output_len", 5.0)));
  // Number for number what NumPy wrote into the file.
  EXPECT_EQ(result.stored_averages, averaged);
  const Json& third = result.output.data[2];
  EXPECT_EQ(third["parsed_output"], "the city of Paris");
  EXPECT_EQ(third["substring_exact_match"], true);
  EXPECT_DOUBLE_EQ(third["f1"].get<double>(), 2.0 / 3);
  // The rest of the example and of the file is kept.
  EXPECT_EQ(third["id"], "q3");
  EXPECT_EQ(result.output.args["model_name_or_path"], "prolong-8b");
  EXPECT_EQ(result.output.extra["throughput"], 0.5);
}

TEST(RescoreTest, DatasetFromTheFileNameWhenNoArgs) {
  ASSERT_OK_AND_ASSIGN(const RescoreResult result, Rescore(kJsonKv));
  EXPECT_EQ(result.dataset.name, "json_kv");
  EXPECT_TRUE(result.stored_averages.empty());
  // One example right after "Corresponding value:", one wrong; no lengths in the file.
  EXPECT_THAT(
      result.output.averaged_metrics,
      ElementsAre(Pair("exact_match", 50.0), Pair("f1", 50.0), Pair("substring_exact_match", 50.0),
                  Pair("rougeL_f1", 50.0), Pair("rougeL_recall", 50.0), Pair("rougeLsum_f1", 50.0),
                  Pair("rougeLsum_recall", 50.0)));
}

TEST(RescoreTest, RerankFileAveragesNumPredsTimesHundred) {
  ASSERT_OK_AND_ASSIGN(const RescoreResult result, Rescore(kRerank));
  // Four candidates: the cutoff 1 only. q1 ranks a label-0 document first (MRR 1/2), q2 its
  // only relevant one.
  EXPECT_THAT(result.output.averaged_metrics,
              ElementsAre(Pair("NDCG@1", 50.0), Pair("MAP@1", 50.0), Pair("Recall@1", 50.0),
                          Pair("P@1", 50.0), Pair("MRR", 75.0), Pair("num_preds", 350.0),
                          Pair("input_len", 5500.0), Pair("output_len", 16.0)));
  EXPECT_EQ(result.stored_averages, result.output.averaged_metrics);
  EXPECT_EQ(result.output.data[1]["parsed_output"],
            Json::parse(R"({"7": 4, "8": 3, "9": 2, "10": 1})"));
}

TEST(WriteHelmetOutputTest, RoundTripsWithAScoreFileAndHelmetTypes) {
  ASSERT_OK_AND_ASSIGN(const RescoreResult rescored, Rescore(kNq));
  const std::string path = prolong::testing::MakeTempDir() + "/out.json";
  ASSERT_OK(WriteHelmetOutput(rescored.output, path));

  ASSERT_OK_AND_ASSIGN(const HelmetOutput read, ReadHelmetOutput(path));
  EXPECT_EQ(read.dataset, "kilt_nq");
  EXPECT_EQ(read.averaged_metrics, rescored.output.averaged_metrics);
  EXPECT_EQ(read.metrics, rescored.output.metrics);
  EXPECT_EQ(read.extra["throughput"], 0.5);

  ASSERT_OK_AND_ASSIGN(const std::string text, ReadFile(path));
  const Json root = Json::parse(text);
  EXPECT_EQ(root["metrics"]["exact_match"], Json::parse("[true, false, false]"));
  EXPECT_EQ(root["metrics"]["input_len"], Json::parse("[100, 200, 300]"));
  EXPECT_EQ(root["data"][0]["exact_match"], true);
  ASSERT_OK_AND_ASSIGN(const std::string score_text, ReadFile(path + ".score"));
  const Json score = Json::parse(score_text);
  EXPECT_EQ(score["exact_match"], 1.0 / 3 * 100);
  EXPECT_EQ(score["input_len"], 200.0);
}

TEST(ScoreOutputsTest, FreshOutputsInOurOwnRun) {
  ASSERT_OK_AND_ASSIGN(const DatasetSpec spec, LookupDataset("ruler_niah_mk_3"));
  ASSERT_OK_AND_ASSIGN(
      const HelmetOutput output,
      ScoreOutputs(
          spec,
          {{{"output", "a1 b2"}, {"answer", {"a1", "b2"}}, {"input_len", 10}, {"output_len", 2}},
           {{"output", "none"}, {"answer", {"c3"}}, {"input_len", 11}, {"output_len", 1}}}));
  EXPECT_THAT(
      output.averaged_metrics,
      ElementsAre(Pair("ruler_recall", 50.0), Pair("input_len", 10.5), Pair("output_len", 1.5)));
  EXPECT_EQ(output.data[0]["parsed_output"], "a1 b2");
  EXPECT_EQ(output.data[0]["ruler_recall"], 1.0);
  EXPECT_THAT(ScoreOutputs(spec, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ScoreOutputs(spec, {{{"output", "x"}}, {{"answer", {"y"}}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data[0]: 'answer'")));
}

TEST(ReadHelmetOutputTest, MalformedFilesNameTheFileAndWhere) {
  const std::string dir = prolong::testing::MakeTempDir();
  const std::string broken = dir + "/kilt_nq_eval_x_in8192_size1_shots2.json";
  ASSERT_OK(WriteFileAtomically(broken, "{\"data\": [\n  {\"output\": \"x\",}\n]}"));
  EXPECT_THAT(ReadHelmetOutput(broken),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(broken + ": not valid JSON: parse error at line 2")));

  const std::string no_data = dir + "/kilt_nq_eval_y_in8192_size1_shots2.json";
  ASSERT_OK(WriteFileAtomically(no_data, R"({"args": {"datasets": "kilt_nq"}})"));
  EXPECT_THAT(ReadHelmetOutput(no_data),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(no_data + ": 'data'")));

  const std::string unnamed = dir + "/results.json";
  ASSERT_OK(WriteFileAtomically(unnamed, R"({"data": [{"output": "x", "answer": "x"}]})"));
  EXPECT_THAT(Rescore(unnamed), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("results.json: no args.datasets")));

  const std::string bad_example = dir + "/json_kv_eval_z_in8192_size1_shots2.json";
  ASSERT_OK(WriteFileAtomically(bad_example, R"({"data": [{"output": "x", "answer": "x"},
                                                           {"output": 5, "answer": "x"}]})"));
  EXPECT_THAT(Rescore(bad_example),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(bad_example + ": data[1]: 'output' must be a string")));

  EXPECT_THAT(Rescore(dir + "/missing.json"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace prolong::evaluator::metrics
