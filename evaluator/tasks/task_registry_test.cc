// The registry against HELMET's configs (configs/*.yaml, scripts/generate_configs.py).
#include "evaluator/tasks/task_registry.h"

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(TaskRegistryTest, NamesEveryHelmetTaskOnce) {
  EXPECT_THAT(TaskNames(),
              ElementsAre("json_kv", "ruler_niah_mk_2", "ruler_niah_mk_3", "ruler_niah_mv",
                          "kilt_nq", "kilt_triviaqa", "kilt_hotpotqa", "kilt_popqa",
                          "msmarco_rerank_psg", "icl_trec_coarse", "icl_trec_fine", "icl_banking77",
                          "icl_clinic150", "icl_nlu", "narrativeqa", "infbench_qa_eng",
                          "infbench_choice_eng", "infbench_sum_eng", "multi_lexsum"));
  EXPECT_THAT(HelmetLengths(), ElementsAre(8192, 16384, 32768, 65536, 131072));
}

TEST(TaskRegistryTest, UnknownNameListsTheValidOnes) {
  EXPECT_THAT(ResolveTask("kilt_msmarco", 8192),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("unknown task 'kilt_msmarco'"),
                             HasSubstr("json_kv, ruler_niah_mk_2"), HasSubstr("multi_lexsum"))));
  EXPECT_THAT(ResolveTask("json_kv", 0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TaskRegistryTest, JsonKvPairsPerLength) {
  std::vector<int> pairs;
  for (int64_t length : HelmetLengths()) pairs.push_back(ResolveTask("json_kv", length)->num_items);
  EXPECT_THAT(pairs, ElementsAre(105, 220, 440, 900, 1800));
  ASSERT_OK_AND_ASSIGN(TaskConfig config, ResolveTask("json_kv", 131072));
  EXPECT_EQ(config.category, Category::kRecall);
  EXPECT_EQ(config.test_file, "json_kv/test_k1800_dep6.jsonl");
  EXPECT_EQ(config.generation_max_length, 100);
  EXPECT_EQ(config.shots, 2);
  EXPECT_EQ(config.max_test_samples, 100);
  EXPECT_FALSE(config.use_chat_template);
  EXPECT_FALSE(config.stop_new_line);
  EXPECT_TRUE(config.generated);
  // Between HELMET's lengths the count scales with the length.
  EXPECT_EQ(ResolveTask("json_kv", 2048)->num_items, 25);
  EXPECT_EQ(ResolveTask("json_kv", 12288)->num_items, 158);
}

TEST(TaskRegistryTest, RulerSettings) {
  ASSERT_OK_AND_ASSIGN(TaskConfig mk2, ResolveTask("ruler_niah_mk_2", 65536));
  EXPECT_EQ(mk2.generation_max_length, 50);
  EXPECT_EQ(mk2.shots, 0);
  EXPECT_EQ(mk2.test_file, "ruler/niah_multikey_2/validation_65536.jsonl");
  EXPECT_EQ(ResolveTask("ruler_niah_mk_3", 8192)->generation_max_length, 100);
  EXPECT_EQ(ResolveTask("ruler_niah_mv", 8192)->generation_max_length, 50);
}

TEST(TaskRegistryTest, RagFilesAndSettings) {
  ASSERT_OK_AND_ASSIGN(TaskConfig nq, ResolveTask("kilt_nq", 32768));
  EXPECT_EQ(nq.category, Category::kRag);
  EXPECT_EQ(nq.test_file, "kilt/nq-dev-multikilt_1000_k220_dep6.jsonl");
  EXPECT_EQ(nq.demo_file, "kilt/nq-train-multikilt_1000_k3_dep6.jsonl");
  EXPECT_EQ(nq.num_items, 220);
  EXPECT_EQ(nq.generation_max_length, 20);
  EXPECT_TRUE(nq.stop_new_line);
  EXPECT_FALSE(nq.use_chat_template);
  EXPECT_EQ(ResolveTask("kilt_hotpotqa", 131072)->test_file,
            "kilt/hotpotqa-dev-multikilt_1000_k1000_dep3.jsonl");
  ASSERT_OK_AND_ASSIGN(TaskConfig popqa, ResolveTask("kilt_popqa", 8192));
  EXPECT_EQ(popqa.dataset, "kilt_popqa_3");
  EXPECT_EQ(popqa.test_file, "kilt/popqa_test_1000_k50_dep6.jsonl");
  EXPECT_EQ(popqa.demo_file, "kilt/popqa_test_1000_k3_dep6.jsonl");
  // Between lengths, the file of the HELMET length below.
  EXPECT_EQ(ResolveTask("kilt_nq", 20000)->num_items, 105);
}

TEST(TaskRegistryTest, RerankAndIcl) {
  ASSERT_OK_AND_ASSIGN(TaskConfig rerank, ResolveTask("msmarco_rerank_psg", 16384));
  EXPECT_EQ(rerank.category, Category::kRerank);
  EXPECT_EQ(rerank.test_file, "msmarco/test_reranking_data_k130_dep3.jsonl");
  EXPECT_EQ(rerank.demo_file, "msmarco/test_reranking_data_k10_dep3.jsonl");
  EXPECT_EQ(rerank.generation_max_length, 200);
  EXPECT_TRUE(rerank.stop_new_line);

  std::vector<int> shots;
  for (int64_t length : HelmetLengths())
    shots.push_back(ResolveTask("icl_banking77", length)->shots);
  EXPECT_THAT(shots, ElementsAre(360, 720, 1450, 2900, 5900));
  ASSERT_OK_AND_ASSIGN(TaskConfig trec, ResolveTask("icl_trec_coarse", 131072));
  EXPECT_EQ(trec.dataset, "icl_trec_coarse_6600shot_balance");
  EXPECT_EQ(trec.max_test_samples, 500);
  EXPECT_EQ(trec.generation_max_length, 20);
  EXPECT_TRUE(trec.stop_new_line);
  EXPECT_EQ(ResolveTask("icl_clinic150", 65536)->shots, 3525);
  EXPECT_EQ(ResolveTask("icl_nlu", 131072)->shots, 8296);
  EXPECT_EQ(ResolveTask("icl_trec_fine", 65536)->shots, 3200);
}

TEST(TaskRegistryTest, LongQaAndSummaries) {
  ASSERT_OK_AND_ASSIGN(TaskConfig narrative, ResolveTask("narrativeqa", 131072));
  EXPECT_EQ(narrative.category, Category::kLongQa);
  EXPECT_EQ(narrative.dataset, "narrativeqa_130772");
  EXPECT_EQ(narrative.context_token_limit, 130772);
  EXPECT_EQ(narrative.min_context_tokens, 131073);
  EXPECT_TRUE(narrative.use_chat_template);
  EXPECT_FALSE(narrative.stop_new_line);
  EXPECT_EQ(narrative.generation_max_length, 100);
  EXPECT_EQ(ResolveTask("infbench_qa_eng", 8192)->dataset, "infbench_qa_eng_7982");
  EXPECT_EQ(ResolveTask("infbench_choice_eng", 65536)->dataset, "infbench_choice_eng_65326");
  ASSERT_OK_AND_ASSIGN(TaskConfig sum, ResolveTask("infbench_sum_eng", 16384));
  EXPECT_EQ(sum.category, Category::kSumm);
  EXPECT_EQ(sum.dataset, "infbench_sum_eng_14984");
  EXPECT_EQ(sum.generation_max_length, 1200);
  ASSERT_OK_AND_ASSIGN(TaskConfig lexsum, ResolveTask("multi_lexsum", 32768));
  EXPECT_EQ(lexsum.dataset, "multi_lexsum_32068");
  EXPECT_EQ(lexsum.generation_max_length, 400);
  EXPECT_EQ(lexsum.min_context_tokens, 65536);
  EXPECT_EQ(CategoryName(lexsum.category), "summ");
}

TEST(TaskRegistryTest, HelmetDatasetNamesResolveAtTheirLength) {
  ASSERT_OK_AND_ASSIGN(TaskConfig trec, ResolveTask("icl_trec_coarse_400shot_balance", 8192));
  EXPECT_EQ(trec.name, "icl_trec_coarse");
  EXPECT_EQ(ResolveTask("narrativeqa_7892", 8192)->name, "narrativeqa");
  EXPECT_EQ(ResolveTask("kilt_popqa_3", 65536)->name, "kilt_popqa");
  EXPECT_THAT(
      ResolveTask("icl_trec_coarse_400shot_balance", 16384),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("icl_trec_coarse_800shot_balance")));
}

}  // namespace
}  // namespace prolong::evaluator::tasks
