// Each loader on its fixture (testdata/, in HELMET's layouts). Which samples and demos HELMET
// picks was computed by running HELMET's own selection code (data.py's load_qa,
// load_msmarco_rerank, load_icl, load_infbench) on the same files with CPython and numpy.
#include "evaluator/tasks/internal/loaders.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "evaluator/tasks/task_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks::internal {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTestdata[] = "evaluator/tasks/testdata/";

class LoadersTest : public ::testing::Test {
 protected:
  LoaderContext Context(const std::string& task, const std::string& test_file,
                        const std::string& demo_file, int max_samples = 0) {
    config_ = *ResolveTask(task, 8192);
    LoaderContext context;
    context.config = &config_;
    context.test_path = absl::StrCat(kTestdata, test_file);
    context.demo_path = demo_file.empty() ? "" : absl::StrCat(kTestdata, demo_file);
    context.max_samples = max_samples;
    context.shots = config_.shots;
    context.reference_tokenizer = tokenizer_.get();
    return context;
  }

  std::vector<std::string> Field(const std::vector<Record>& examples, const std::string& name) {
    std::vector<std::string> values;
    for (const Record& example : examples) values.push_back(example[name].dump());
    return values;
  }

  TaskConfig config_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_ = Llama3TestTokenizer();
};

TEST_F(LoadersTest, RagReadsKiltRecordsAndSkipsMalformedLines) {
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(
      auto examples,
      LoadRag(Context("kilt_nq", "kilt/nq_test.jsonl", "kilt/nq_demos.jsonl"), report));
  ASSERT_EQ(examples.size(), 4u);
  EXPECT_EQ(report.records_read, 4);
  EXPECT_EQ(report.records_skipped, 2);
  EXPECT_THAT(report.problems, ElementsAre(HasSubstr("nq_test.jsonl:3: not valid JSON"),
                                           HasSubstr("nq_test.jsonl:5: field 'answers'")));
  const Record& first = examples[0];
  EXPECT_EQ(first["answer"], Record::array({"Paul McCartney", "McCartney"}));
  EXPECT_EQ(first["context"],
            "Document (Title: Yesterday (song)): Yesterday is a song by the Beatles, written by "
            "Paul McCartney.\n\nDocument (Title: The Beatles): The Beatles were an English rock "
            "band formed in Liverpool in 1960.");
  // Demos: shuffled by the question's SHA-256, duplicates (by question) dropped: demo 2 is
  // the Mona Lisa again, so "capital of australia" gets demos 2 and 1.
  EXPECT_TRUE(absl::StartsWith(first["demos"].get<std::string>(),
                               "Document (Title: Mona Lisa): The Mona Lisa"));
  EXPECT_TRUE(absl::StartsWith(examples[1]["demos"].get<std::string>(),
                               "Document (Title: Leonardo): Leonardo was an Italian polymath.\n\n"
                               "Question: who painted the mona lisa\nAnswer: Leonardo\n\n"
                               "Document (Title: Jupiter)"));
}

TEST_F(LoadersTest, RagStrictStopsAtTheFirstMalformedLine) {
  LoaderContext context = Context("kilt_nq", "kilt/nq_test.jsonl", "kilt/nq_demos.jsonl");
  context.strict = true;
  LoadReport report;
  EXPECT_THAT(LoadRag(context, report),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nq_test.jsonl:3:")));
}

TEST_F(LoadersTest, StrictModeNamesTheFirstMalformedLineOfEveryLoader) {
  LoadReport report;
  LoaderContext rerank =
      Context("msmarco_rerank_psg", "msmarco/rerank_test.jsonl", "msmarco/rerank_demos.jsonl");
  rerank.strict = true;
  EXPECT_THAT(LoadRerank(rerank, report),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("rerank_test.jsonl:3: ctxs[0] needs a string \"id\"")));
  LoaderContext icl = Context("icl_trec_coarse", "icl/trec/test.jsonl", "icl/trec/train.jsonl");
  icl.strict = true;
  EXPECT_THAT(LoadIcl(icl, report), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("trec/test.jsonl:4: field 'coarse_label'")));
  LoaderContext missing = Context("infbench_qa_eng", "infbench/none.jsonl", "");
  EXPECT_THAT(LoadInfBench(missing, report),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("infbench/none.jsonl")));
}

TEST_F(LoadersTest, RagSamplesQuestionsAsHelmetDoes) {
  LoadReport report;
  // random.seed(42); random.sample(sorted(questions), 2), then the file's order.
  ASSERT_OK_AND_ASSIGN(
      auto examples,
      LoadRag(Context("kilt_nq", "kilt/nq_test.jsonl", "kilt/nq_demos.jsonl", 2), report));
  EXPECT_THAT(Field(examples, "question"), ElementsAre("\"who wrote the song yesterday\"",
                                                       "\"how many legs does a spider have\""));
}

TEST_F(LoadersTest, PopQaKeepsRareEntitiesAndNeverItsOwnQuestionAsDemo) {
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(
      auto examples,
      LoadRag(Context("kilt_popqa", "kilt/popqa_test.jsonl", "kilt/popqa_test.jsonl"), report));
  EXPECT_THAT(Field(examples, "id"), ElementsAre("101", "103", "104"));  // s_pop 250000 dropped
  EXPECT_EQ(report.filtered_out, 1);
  // Demos for 101: 103 then 104 (its own id left out of the pool first).
  const std::string demos = examples[0]["demos"];
  EXPECT_LT(demos.find("Tartu"), demos.find("Metropolis"));
  EXPECT_EQ(demos.find("Ada Lovelace"), std::string::npos);
}

TEST_F(LoadersTest, RerankBuildsQrelsRankingsAndDemos) {
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(auto examples,
                       LoadRerank(Context("msmarco_rerank_psg", "msmarco/rerank_test.jsonl",
                                          "msmarco/rerank_demos.jsonl"),
                                  report));
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_THAT(report.problems, ElementsAre(HasSubstr("rerank_test.jsonl:3: ctxs[0]")));
  const Record& q1 = examples[0];
  EXPECT_EQ(q1["qid"], "q1");
  EXPECT_EQ(q1["question"], "how to boil an egg");
  EXPECT_FALSE(q1.contains("query"));
  EXPECT_FALSE(q1.contains("ctxs"));
  EXPECT_EQ(q1["answer"], "11 > 12 > 13");
  EXPECT_EQ(q1["qrel"], Record::parse(R"([["11", "3"], ["12", "1"], ["13", "0"]])"));
  EXPECT_EQ(q1["k_values"], Record::parse("[1]"));
  EXPECT_EQ(examples[1]["answer"], "21 > 23 > 22");  // Ties keep the file's order.
  // q1's demos: d2 then d3 (seeded by sha256("q1")).
  EXPECT_EQ(q1["demos"],
            "[ID: 51] Document (Title: Everest): Mount Everest is the highest mountain.\n\n"
            "[ID: 52] Document (Title: K2): K2 is the second highest.\n\nQuery: tallest "
            "mountain\nRanking: 51 > 52\n\n"
            "[ID: 61] Document (Title: Water): Water boils at 100 degrees Celsius.\n\n"
            "[ID: 62] Document (Title: Ice): Ice melts at 0 degrees.\n\nQuery: boiling point of "
            "water\nRanking: 61 > 62\n\n");

  // random.seed(42); random.sample(["q1", "q2", "q3"], 2) == ["q3", "q1"]; file order kept.
  ASSERT_OK_AND_ASSIGN(examples,
                       LoadRerank(Context("msmarco_rerank_psg", "msmarco/rerank_test.jsonl",
                                          "msmarco/rerank_demos.jsonl", 2),
                                  report));
  EXPECT_THAT(Field(examples, "qid"), ElementsAre("\"q1\"", "\"q3\""));
}

TEST_F(LoadersTest, IclMapsLabelsToRandomIntegersPerExample) {
  LoaderContext context = Context("icl_trec_coarse", "icl/trec/test.jsonl", "icl/trec/train.jsonl");
  context.shots = 6;
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(auto examples, LoadIcl(context, report));
  ASSERT_EQ(examples.size(), 4u);
  EXPECT_THAT(report.problems,
              ElementsAre(HasSubstr("test.jsonl:4: field 'coarse_label' is 6, outside [0, 6)")));
  // "What does UNESCO stand for ?": seed (sha256(text) + 42) % 2**31 = 37065397, label mapping
  // [5, 3, 2, 0, 1, 4]; its label 0 (ABBR) becomes "5".
  const Record& unesco = examples[0];
  EXPECT_EQ(unesco["question"], "What does UNESCO stand for ?");
  EXPECT_EQ(unesco["answer"], "5");
  EXPECT_EQ(unesco["context"],
            "What does CPR stand for ?\nlabel: 5\n\nWho invented the telephone ?\nlabel: 0\n\n"
            "How many moons does Mars have ?\nlabel: 4\n\nWhere is Mount Kilimanjaro ?\nlabel: "
            "1\n\nWhy is the sky blue ?\nlabel: 2\n\nWhat is the oldest breed of dog ?\nlabel: 3");
  // Another text, another mapping: [5, 1, 3, 4, 0, 2]; penicillin (HUM, 3) becomes "4".
  EXPECT_EQ(examples[1]["answer"], "4");
  EXPECT_THAT(examples[1]["context"].get<std::string>(),
              HasSubstr("Who invented the telephone ?\nlabel: 4"));

  // Two rounds of six labels cut to 8: a balanced draw, labels still consistent.
  context.shots = 8;
  ASSERT_OK_AND_ASSIGN(examples, LoadIcl(context, report));
  EXPECT_EQ(
      examples[0]["context"],
      "What color is a ruby ?\nlabel: 3\n\nWhy is the sky blue ?\nlabel: 2\n\nWhat does "
      "CPR stand for ?\nlabel: 5\n\nWho invented the telephone ?\nlabel: 0\n\nWhen was the "
      "Magna Carta signed ?\nlabel: 4\n\nWhat country has the most lakes ?\nlabel: 1\n\n"
      "Where is Mount Kilimanjaro ?\nlabel: 1\n\nWhat is the oldest breed of dog ?\nlabel: 3");
}

TEST_F(LoadersTest, IclBalancesAShuffledTestSubset) {
  LoaderContext context =
      Context("icl_trec_coarse", "icl/trec/test.jsonl", "icl/trec/train.jsonl", 3);
  context.shots = 6;
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(auto examples, LoadIcl(context, report));
  EXPECT_THAT(Field(examples, "question"),
              ElementsAre("\"What does UNESCO stand for ?\"", "\"Who discovered penicillin ?\"",
                          "\"How many bones are in the human body ?\""));
}

TEST_F(LoadersTest, NluIsSplitAsTrainTestSplitSplitsIt) {
  LoaderContext context = Context("icl_nlu", "icl/nlu_evaluation_data/train.jsonl", "");
  context.shots = 4;
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(auto examples, LoadIcl(context, report));
  // ceil(0.1 * 12) = 2 test examples: the permutation's first two.
  EXPECT_THAT(Field(examples, "question"),
              ElementsAre("\"wake me up at seven\"", "\"play my workout playlist\""));
  for (const Record& example : examples) {
    EXPECT_EQ(example["context"].get<std::string>().find(example["question"].get<std::string>()),
              std::string::npos);
  }
}

TEST_F(LoadersTest, NarrativeQaShufflesFiltersAndCuts) {
  LoaderContext context =
      Context("narrativeqa", "narrativeqa/test.jsonl", "narrativeqa/train.jsonl");
  // Fixture documents are short: first every one, uncut; then a threshold between the two
  // stories' lengths and a cut.
  config_.min_context_tokens = 1;
  config_.context_token_limit = 100000;
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(auto all, LoadNarrativeQa(context, report));
  ASSERT_EQ(all.size(), 3u);
  const std::string long_story = all[0]["context"];  // doc1, unchanged: under the limit
  config_.min_context_tokens = static_cast<int64_t>(tokenizer_->Encode(long_story).size());
  config_.context_token_limit = 80;
  ASSERT_OK_AND_ASSIGN(auto examples, LoadNarrativeQa(context, report));
  // test.shuffle(seed=42) is [2, 1, 0]; the clockmaker's book is too short.
  EXPECT_THAT(Field(examples, "question"),
              ElementsAre("\"What did Mara name her new boat?\"", "\"Who did Mara rescue?\""));
  EXPECT_EQ(examples[1]["answer"],
            Record::array({"Two brothers", "The two brothers aboard the fishing boat"}));
  const std::string cut = examples[0]["context"];
  EXPECT_TRUE(absl::EndsWith(cut, " ... [the rest of the text is omitted]"));
  const std::string kept =
      cut.substr(0, cut.size() - strlen(" ... [the rest of the text is omitted]"));
  EXPECT_GT(kept.size(), 20u);
  EXPECT_TRUE(absl::StartsWith(long_story, kept));
  EXPECT_LE(tokenizer_->Encode(cut).size() + 1, 80u);
  EXPECT_EQ(examples[0]["demo"],
            "For example:\n\nQuestion: Who is the hero?\nAnswer: A baker\n\nQuestion: Where does "
            "the tale begin?\nAnswer: In a forest\n\nNow, use the following story to answer the "
            "question:\n\n");
  EXPECT_FALSE(examples[0].contains("document"));
}

TEST_F(LoadersTest, InfBenchQaChoiceAndSummary) {
  LoadReport report;
  LoaderContext qa = Context("infbench_qa_eng", "infbench/longbook_qa_eng.jsonl", "", 2);
  config_.min_context_tokens = 10;
  ASSERT_OK_AND_ASSIGN(auto examples, LoadInfBench(qa, report));
  // shuffle(seed=42) of the three: [2, 1, 0], the first two kept.
  EXPECT_THAT(Field(examples, "id"), ElementsAre("2", "1"));
  EXPECT_EQ(examples[1]["question"], "Where did Lena follow the stranger?");
  // Demos: the others, shuffled with seed 42 ([1, 0] of two): for id 1, ids 2 then 0.
  EXPECT_EQ(examples[1]["demo"],
            "For example:\n\n[story text]\nQuestion: What did the stranger pay with?\nAnswer: a "
            "silver coin\n\n[story text]\nQuestion: What did Tomas sell?\nAnswer: bread\n\nNow, "
            "read the following story:\n\n");

  LoaderContext choice = Context("infbench_choice_eng", "infbench/longbook_choice_eng.jsonl", "");
  config_.min_context_tokens = 10;
  ASSERT_OK_AND_ASSIGN(examples, LoadInfBench(choice, report));
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_EQ(examples[0]["options"], "A. Portraits\nB. Signs\nC. Boats\nD. Walls");
  EXPECT_EQ(examples[0]["answer"], Record::array({"B", "B. Signs"}));
  EXPECT_THAT(examples[0]["demo"].get<std::string>(),
              HasSubstr("Options:\nA. The market\nB. The river\nC. The old mill\nD. Home\n"
                        "Answer: C"));

  LoaderContext summary = Context("infbench_sum_eng", "infbench/longbook_sum_eng.jsonl", "");
  config_.min_context_tokens = 10;
  EXPECT_THAT(LoadInfBench(summary, report), StatusIs(absl::StatusCode::kFailedPrecondition));
  summary.shots = 1;
  ASSERT_OK_AND_ASSIGN(examples, LoadInfBench(summary, report));
  EXPECT_EQ(examples[0]["demo"],
            "For example:\n\n[story text]\nSummary: A stranger visits a river town.\n\nNow, read "
            "the following story:\n\n");
  EXPECT_EQ(examples[1]["demo"],
            "For example:\n\n[story text]\nSummary: Tomas and Lena meet a stranger.\n\nNow, read "
            "the following story:\n\n");
}

TEST_F(LoadersTest, MultiLexSumDropsCasesWithoutShortSummaries) {
  LoaderContext context =
      Context("multi_lexsum", "multi_lexsum/validation.jsonl", "multi_lexsum/train.jsonl");
  config_.min_context_tokens = 10;
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(auto examples, LoadMultiLexSum(context, report));
  EXPECT_THAT(Field(examples, "id"), ElementsAre("\"case-1\"", "\"case-3\""));
  EXPECT_EQ(report.filtered_out, 1);
  EXPECT_EQ(examples[0]["context"],
            "Complaint: The plaintiffs allege unlawful detention.\n\nOrder: The court grants "
            "class certification.");
  EXPECT_EQ(examples[0]["answer"], "Detainees sued; the court certified a class.");
  EXPECT_EQ(examples[0]["question"], "");
  EXPECT_FALSE(examples[0].contains("sources"));
  EXPECT_EQ(examples[0]["demo"],
            "Example summaries:\n\nSummary: Workers challenged a policy and won an injunction.\n\n"
            "Summary: Students sued a school district; the case settled.\n\nNow, write a summary "
            "of the following legal documents.\n");
}

TEST_F(LoadersTest, LengthFilterDropsShortDocuments) {
  LoaderContext context = Context("infbench_qa_eng", "infbench/longbook_qa_eng.jsonl", "");
  LoadReport report;
  // HELMET's threshold, 65536 tokens: no fixture book is that long.
  ASSERT_OK_AND_ASSIGN(auto examples, LoadInfBench(context, report));
  EXPECT_TRUE(examples.empty());
  EXPECT_EQ(report.filtered_out, 3);
}

}  // namespace
}  // namespace prolong::evaluator::tasks::internal
