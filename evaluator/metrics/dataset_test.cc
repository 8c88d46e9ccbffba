#include "evaluator/metrics/dataset.h"

#include <string>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::metrics {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Optional;

struct Expected {
  std::string name;
  Category category;
  Scoring scoring;
  std::string primary;
  std::string reported;
};

TEST(LookupDatasetTest, HelmetConfigNames) {
  const Expected cases[] = {
      {"json_kv", Category::kRecall, Scoring::kJsonKv, "substring_exact_match",
       "substring_exact_match"},
      {"ruler_niah_mk_2", Category::kRecall, Scoring::kRulerRecall, "ruler_recall", "ruler_recall"},
      {"ruler_niah_mk_3", Category::kRecall, Scoring::kRulerRecall, "ruler_recall", "ruler_recall"},
      {"ruler_niah_mv", Category::kRecall, Scoring::kRulerRecall, "ruler_recall", "ruler_recall"},
      {"ruler_cwe", Category::kRuler, Scoring::kRulerRecall, "ruler_recall", "ruler_recall"},
      {"ruler_qa_1", Category::kRuler, Scoring::kQa, "substring_exact_match",
       "substring_exact_match"},
      {"kilt_nq", Category::kRag, Scoring::kQa, "substring_exact_match", "substring_exact_match"},
      {"kilt_triviaqa", Category::kRag, Scoring::kQa, "substring_exact_match",
       "substring_exact_match"},
      {"kilt_hotpotqa", Category::kRag, Scoring::kQa, "substring_exact_match",
       "substring_exact_match"},
      {"kilt_popqa_3", Category::kRag, Scoring::kQa, "substring_exact_match",
       "substring_exact_match"},
      {"msmarco_rerank_psg", Category::kRerank, Scoring::kRerank, "NDCG@10", "NDCG@10"},
      {"icl_trec_coarse_6600shot_balance", Category::kIcl, Scoring::kIcl, "exact_match",
       "exact_match"},
      {"icl_nlu_8296shot_balance", Category::kIcl, Scoring::kIcl, "exact_match", "exact_match"},
      {"narrativeqa_130772", Category::kLongQa, Scoring::kQa, "gpt-4-score", "rougeL_f1"},
      {"infbench_qa_eng_130862", Category::kLongQa, Scoring::kQa, "rougeL_f1", "rougeL_f1"},
      {"infbench_choice_eng_130862", Category::kLongQa, Scoring::kChoice, "exact_match",
       "exact_match"},
      {"infbench_sum_eng_129672", Category::kSumm, Scoring::kQa, "gpt-4-f1", "rougeLsum_f1"},
      {"multi_lexsum_130372", Category::kSumm, Scoring::kSummary, "gpt-4-f1", "rougeLsum_f1"},
  };
  for (const Expected& expected : cases) {
    ASSERT_OK_AND_ASSIGN(const DatasetSpec spec, LookupDataset(expected.name));
    EXPECT_EQ(spec.name, expected.name);
    EXPECT_EQ(spec.category, expected.category) << expected.name;
    EXPECT_EQ(spec.scoring, expected.scoring) << expected.name;
    EXPECT_EQ(spec.primary_metric, expected.primary) << expected.name;
    EXPECT_EQ(spec.reported_metric, expected.reported) << expected.name;
    EXPECT_EQ(spec.judged, expected.primary != expected.reported) << expected.name;
  }
  EXPECT_EQ(CategoryName(Category::kLongQa), "longqa");
  EXPECT_EQ(CategoryName(Category::kRerank), "rerank");
}

TEST(LookupDatasetTest, UnknownAndUnsupported) {
  // JSON KV is matched by its exact name only, as load_data does.
  EXPECT_THAT(LookupDataset("json_kv_long"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kilt_nq")));
  EXPECT_THAT(LookupDataset("squad"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown dataset 'squad'")));
  EXPECT_THAT(LookupDataset("alce_asqa_700"), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(LookupDataset("html_to_tsv_0.5k"), StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(DatasetFromOutputNameTest, HelmetFileNames) {
  EXPECT_THAT(DatasetFromOutputName(
                  "output/Llama-3.1-8B/kilt_nq_eval_nq-dev-multikilt_1000_k1000_dep6_in131072_"
                  "size100_shots2_sampFalsemax20min0t0.0p1.0_chatFalse_42.json"),
              Optional(std::string("kilt_nq")));
  EXPECT_THAT(DatasetFromOutputName("json_kv_v1_test_k1800_dep6_in131072_size100_shots2_"
                                    "sampFalsemax100min0t0.0p1.0_chatFalse_42.json.score"),
              Optional(std::string("json_kv")));
  EXPECT_THAT(DatasetFromOutputName("icl_trec_coarse_6600shot_balance_eval__in131072_size500_"
                                    "shots0_sampFalsemax20min0t0.0p1.0_chatFalse_42.json"),
              Optional(std::string("icl_trec_coarse_6600shot_balance")));
  EXPECT_THAT(DatasetFromOutputName("ruler_niah_mk_2_eval_validation_131072_in131072_size100_"
                                    "shots0_sampFalsemax50min0t0.0p1.0_chatFalse_42.json"),
              Optional(std::string("ruler_niah_mk_2")));
  EXPECT_THAT(DatasetFromOutputName("narrativeqa_130772_eval__in131072_size100_shots2_"
                                    "sampFalsemax100min0t0.0p1.0_chatTrue_42.json"),
              Optional(std::string("narrativeqa_130772")));
  EXPECT_EQ(DatasetFromOutputName("results.json"), std::nullopt);
  EXPECT_EQ(DatasetFromOutputName("nq_results.json"), std::nullopt);
}

TEST(IsHelmetDatasetNameTest, Shapes) {
  EXPECT_TRUE(IsHelmetDatasetName("kilt_popqa_3"));
  EXPECT_TRUE(IsHelmetDatasetName("icl_banking77_360shot_balance"));
  EXPECT_TRUE(IsHelmetDatasetName("icl_clinic150_440shot"));
  EXPECT_FALSE(IsHelmetDatasetName("icl_clinic150_440shot_eval"));
  EXPECT_FALSE(IsHelmetDatasetName("narrativeqa_"));
  EXPECT_FALSE(IsHelmetDatasetName("kilt_nq_eval"));
}

TEST(OutputFileNameTest, AsEvalPyWritesIt) {
  OutputNameSettings settings;
  settings.dataset = "json_kv";
  settings.test_name = "test_k1800_dep6";
  settings.max_test_samples = 100;
  settings.generation_max_length = 100;
  EXPECT_EQ(OutputFileName(settings),
            "json_kv_eval_test_k1800_dep6_in131072_size100_shots2_sampFalsemax100min0t0.0p1.0_"
            "chatFalse_42.json");

  settings.max_test_samples.reset();
  settings.do_sample = true;
  settings.temperature = 0.6;
  settings.top_p = 0.95;
  settings.use_chat_template = true;
  EXPECT_EQ(OutputFileName(settings),
            "json_kv_eval_test_k1800_dep6_in131072_sizeNone_shots2_sampTruemax100min0t0.6p0.95_"
            "chatTrue_42.json");

  settings.temperature = 0.00001;
  settings.top_p = 1e16;
  EXPECT_THAT(OutputFileName(settings), HasSubstr("t1e-05p1e+16_"));

  // Only the dataset named exactly "popqa" gets the popularity threshold in its tag.
  settings.dataset = "popqa";
  EXPECT_THAT(OutputFileName(settings), HasSubstr("popqa_eval_pop3_test"));
  settings.dataset = "kilt_popqa_3";
  EXPECT_THAT(OutputFileName(settings), HasSubstr("kilt_popqa_3_eval_test"));
  // And the name reads back.
  EXPECT_THAT(DatasetFromOutputName(OutputFileName(settings)),
              Optional(std::string("kilt_popqa_3")));
}

}  // namespace
}  // namespace prolong::evaluator::metrics
