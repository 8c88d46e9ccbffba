// Prompts as HELMET's templates produce them (expected strings written from data.py's
// templates), the chat format, and the truncation of over-long contexts.
#include "evaluator/tasks/prompt.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_matchers.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "evaluator/tasks/load_task.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTestdata[] = "evaluator/tasks/testdata/";

class PromptTest : public ::testing::Test {
 protected:
  TaskData Load(const std::string& task, int64_t length, const std::string& test_file,
                const std::string& demo_file, int shots = -1, int64_t min_tokens = -1) {
    absl::StatusOr<TaskConfig> config = ResolveTask(task, length);
    EXPECT_OK(config);
    if (shots >= 0) config->shots = shots;
    if (min_tokens >= 0) config->min_context_tokens = min_tokens;
    LoadOptions options;
    options.data_dir = kTestdata;
    options.test_file = test_file;
    options.demo_file = demo_file;
    options.max_samples = 0;
    absl::StatusOr<TaskData> data = LoadTask(*config, options, *tokenizer_);
    EXPECT_OK(data);
    return *std::move(data);
  }

  uint32_t Special(const char* name) { return *tokenizer_->SpecialTokenId(name); }

  std::unique_ptr<tokenizer::Tokenizer> tokenizer_ = internal::Llama3TestTokenizer();
};

TEST_F(PromptTest, RagPromptIsHelmetsTemplate) {
  TaskData data = Load("kilt_nq", 8192, "kilt/nq_test.jsonl", "kilt/nq_demos.jsonl");
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, {}));
  EXPECT_EQ(prompt.text,
            "Use the given documents to write a concise and short answer to the question. Write "
            "your answer in the following format:\nAnswer: [answer]\n\n"
            "Document (Title: Mona Lisa): The Mona Lisa is a portrait painted by Leonardo da "
            "Vinci.\n\nQuestion: who painted the mona lisa\nAnswer: Leonardo da Vinci\n\n"
            "Document (Title: Jupiter): Jupiter is the largest planet in the Solar System.\n\n"
            "Question: what is the largest planet\nAnswer: Jupiter\n\n"
            "Document (Title: Yesterday (song)): Yesterday is a song by the Beatles, written by "
            "Paul McCartney.\n\nDocument (Title: The Beatles): The Beatles were an English rock "
            "band formed in Liverpool in 1960.\n\nQuestion: who wrote the song yesterday\n"
            "Answer:");
  // Without the chat template: BOS, then the text; the model continues "Answer:".
  ASSERT_FALSE(prompt.chat_template);
  EXPECT_EQ(prompt.input_ids.front(), Special("<|begin_of_text|>"));
  EXPECT_EQ(*tokenizer_->Decode(absl::MakeConstSpan(prompt.input_ids).subspan(1)), prompt.text);
  EXPECT_EQ(prompt.output_prefix, "Answer:");
  EXPECT_EQ(prompt.generation.max_new_tokens, 20);
  EXPECT_THAT(prompt.generation.stop_strings, ElementsAre("\n", "\n\n"));
  EXPECT_EQ(prompt.context_tokens_removed, 0);
  // The record keeps what the metrics read, without the context or its passages.
  EXPECT_EQ(prompt.record["answer"], Record::array({"Paul McCartney", "McCartney"}));
  EXPECT_EQ(prompt.record["question"], "who wrote the song yesterday");
  EXPECT_FALSE(prompt.record.contains("context"));
  EXPECT_FALSE(prompt.record.contains("ctxs"));
}

TEST_F(PromptTest, RerankPromptIsHelmetsTemplate) {
  TaskData data =
      Load("msmarco_rerank_psg", 8192, "msmarco/rerank_test.jsonl", "msmarco/rerank_demos.jsonl");
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, {}));
  EXPECT_EQ(prompt.text,
            "You are provided with a list of documents, each indicated by their ID. Rank each "
            "document based on their relevance to the question in descending order from most "
            "relelvant to least relevant texts. Include all documents in the rankings. Write your "
            "answer using the unique IDs, with the following format:\nRanking: ID3 > ID1 > ID2\n\n"
            "[ID: 51] Document (Title: Everest): Mount Everest is the highest mountain.\n\n"
            "[ID: 52] Document (Title: K2): K2 is the second highest.\n\n"
            "Query: tallest mountain\nRanking: 51 > 52\n\n"
            "[ID: 61] Document (Title: Water): Water boils at 100 degrees Celsius.\n\n"
            "[ID: 62] Document (Title: Ice): Ice melts at 0 degrees.\n\n"
            "Query: boiling point of water\nRanking: 61 > 62\n\n"
            "[ID: 11] Document (Title: Boiled egg): Place the egg in boiling water for nine "
            "minutes.\n\n[ID: 12] Document (Title: Egg): Eggs are a source of protein.\n\n"
            "[ID: 13] Document (Title: Eiffel Tower): The Eiffel Tower is in Paris.\n\n"
            "Query: how to boil an egg\nRanking:");
  EXPECT_EQ(prompt.output_prefix, "Ranking:");
  EXPECT_EQ(prompt.generation.max_new_tokens, 200);
  EXPECT_EQ(prompt.record["qrel"], Record::parse(R"([["11", "3"], ["12", "1"], ["13", "0"]])"));
}

TEST_F(PromptTest, IclPromptIsHelmetsTemplate) {
  TaskData data = Load("icl_trec_coarse", 8192, "icl/trec/test.jsonl", "icl/trec/train.jsonl", 6);
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, {}));
  EXPECT_EQ(prompt.text,
            "Use the provided mapping from the text to label to assign a label to the text. Only "
            "output \"label: {label}\" and nothing else. \n\n"
            "What does CPR stand for ?\nlabel: 5\n\nWho invented the telephone ?\nlabel: 0\n\n"
            "How many moons does Mars have ?\nlabel: 4\n\nWhere is Mount Kilimanjaro ?\nlabel: "
            "1\n\nWhy is the sky blue ?\nlabel: 2\n\nWhat is the oldest breed of dog ?\nlabel: 3"
            "\n\nWhat does UNESCO stand for ?\nlabel:");
  EXPECT_EQ(prompt.output_prefix, "label:");
  EXPECT_EQ(prompt.record["answer"], "5");
}

TEST_F(PromptTest, JsonKvPromptIsHelmetsTemplate) {
  TaskData data = Load("json_kv", 512, "", "");
  ASSERT_EQ(data.config.num_items, 6);
  const Record& example = data.examples[0];
  // UUIDs are many tokens in the byte-level test tokenizer: room for all six pairs.
  PromptOptions options;
  options.max_length = 4096;
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, example, *tokenizer_, options));
  EXPECT_EQ(prompt.context_tokens_removed, 0);
  const std::string question = example["question"], context = example["context"];
  const auto& demo = example["demo_pairs"];
  EXPECT_EQ(prompt.text,
            absl::StrCat(context,
                         "\n\nExtract the value corresponding to the specified key in the JSON "
                         "object below.\n\nKey: ",
                         demo[0][0].get<std::string>(), "\nCorresponding value: ",
                         demo[0][1].get<std::string>(), "\n\nKey: ", demo[1][0].get<std::string>(),
                         "\nCorresponding value: ", demo[1][1].get<std::string>(),
                         "\n\nKey: ", question, "\nCorresponding value:"));
  EXPECT_EQ(prompt.output_prefix, "Corresponding value:");
  EXPECT_TRUE(prompt.generation.stop_strings.empty());
  EXPECT_EQ(prompt.generation.max_new_tokens, 100);
}

TEST_F(PromptTest, RulerPromptIsHelmetsTemplate) {
  TaskData data = Load("ruler_niah_mk_2", 2048, "", "");
  const Record& example = data.examples[0];
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, example, *tokenizer_, {}));
  const std::string key = example["query"], context = example["context"];
  EXPECT_EQ(prompt.text,
            absl::StrCat("A special magic number is hidden within the following text. Make sure "
                         "to memorize it. I will quiz you about the number afterwards.\n",
                         context, "\nWhat is the special magic number for ", key,
                         " mentioned in the provided text?\nThe special magic number for ", key,
                         " mentioned in the provided text is"));
  EXPECT_EQ(prompt.output_prefix, absl::StrCat("The special magic number for ", key,
                                               " mentioned in the provided text is"));
  EXPECT_LE(prompt.input_ids.size(), 2048u - 50u);
}

TEST_F(PromptTest, LongQaUsesLlama3ChatFormat) {
  TaskData data =
      Load("infbench_choice_eng", 8192, "infbench/longbook_choice_eng.jsonl", "", 2, 10);
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, {}));
  ASSERT_TRUE(prompt.chat_template);
  const std::string book = data.examples[0]["context"];
  EXPECT_EQ(prompt.text,
            absl::StrCat(
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
                "You are given a story and a question with multiple choices. Choose the best "
                "answer from the options provided. Only one of the following options is correct, "
                "output the answer using one single letter (A, B, C, or D). Don't say anything "
                "else.\n\nFor example:\n\n[story text]\nQuestion: Where did Lena go?\nOptions:\n"
                "A. The market\nB. The river\nC. The old mill\nD. Home\nAnswer: C\n\n[story text]\n"
                "Question: Who bought every loaf?\nOptions:\nA. Lena\nB. The miller\nC. A "
                "stranger\nD. Tomas\nAnswer: C\n\nNow, read the following story:\n\n",
                book,
                "\n\nQuestion: What did Lena paint?\nOptions:\nA. Portraits\nB. Signs\nC. Boats\n"
                "D. Walls<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"));
  // The chat tokens are single special tokens; the output is scored as generated.
  EXPECT_EQ(prompt.input_ids[0], Special("<|begin_of_text|>"));
  EXPECT_EQ(prompt.input_ids[1], Special("<|start_header_id|>"));
  EXPECT_EQ(prompt.input_ids.back(), tokenizer_->Encode("\n\n").back());
  EXPECT_EQ(prompt.output_prefix, "");
  EXPECT_EQ(prompt.record["answer"], Record::array({"B", "B. Signs"}));
  EXPECT_EQ(prompt.generation.max_new_tokens, 10);
}

TEST_F(PromptTest, SystemMessageAndChatOverride) {
  TaskData data = Load("kilt_nq", 8192, "kilt/nq_test.jsonl", "kilt/nq_demos.jsonl");
  PromptOptions options;
  options.use_chat_template = true;
  options.system_message = " Be brief. ";
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, options));
  EXPECT_TRUE(absl::StartsWith(
      prompt.text,
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nUse the given documents"));
  EXPECT_TRUE(absl::EndsWith(prompt.text,
                             "Question: who wrote the song yesterday<|eot_id|>"
                             "<|start_header_id|>assistant<|end_header_id|>\n\n"));
  EXPECT_EQ(prompt.output_prefix, "");

  auto plain = internal::PlainTestTokenizer();
  EXPECT_THAT(BuildPrompt(data, data.examples[0], *plain, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("<|begin_of_text|>")));
}

// A RAG-shaped task whose context is 60 numbered passages.
TaskData LongTask(int generation_max_length) {
  TaskData data;
  data.config = *ResolveTask("kilt_nq", 8192);
  data.config.generation_max_length = generation_max_length;
  data.templates.user = "Instructions.\n\n{demos}{context}\n\nQuestion: {question}";
  data.templates.system = "Answer:";
  data.templates.prompt = data.templates.user + "\n" + data.templates.system;
  std::vector<std::string> passages;
  for (int i = 0; i < 60; ++i) {
    passages.push_back(absl::StrCat("Document (Title: Passage ", i, "): passage ", i,
                                    " tells about river ", i * 7, " and its towns."));
  }
  Record example;
  example["question"] = "which river is longest";
  example["demos"] = "Demo passage.\n\nQuestion: a demo\nAnswer: yes\n\n";
  example["context"] = absl::StrJoin(passages, "\n\n");
  example["answer"] = Record::array({"river 7"});
  data.examples.push_back(example);
  return data;
}

TEST_F(PromptTest, HelmetTruncationCutsTheEndOfTheContextOnly) {
  TaskData data = LongTask(20);
  const Record& example = data.examples[0];
  PromptOptions options;
  options.max_length = 400;
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, example, *tokenizer_, options));
  EXPECT_LE(prompt.input_ids.size(), 400u - 20u);
  EXPECT_GT(prompt.context_tokens_removed, 0);
  // HELMET's cut: the context's first tokens, as many as the overflow allows.
  const std::string context = example["context"];
  const std::vector<uint32_t> context_ids = tokenizer_->EncodeWithSpecialTokens(context);
  const std::vector<uint32_t> kept(context_ids.begin(),
                                   context_ids.end() - prompt.context_tokens_removed);
  const std::string cut = *tokenizer_->Decode(kept);
  EXPECT_EQ(prompt.text, absl::StrCat("Instructions.\n\nDemo passage.\n\nQuestion: a demo\nAnswer: "
                                      "yes\n\n",
                                      cut, "\n\nQuestion: which river is longest\nAnswer:"));
  EXPECT_TRUE(absl::StartsWith(cut, "Document (Title: Passage 0)"));
  EXPECT_EQ(prompt.text.find("Passage 59"), std::string::npos);
  // One pass was enough: exactly the overflow was removed.
  Record whole = example;
  ASSERT_OK_AND_ASSIGN(Prompt untruncated, BuildPrompt(data, whole, *tokenizer_, {}));
  EXPECT_EQ(static_cast<int64_t>(untruncated.input_ids.size()) - prompt.context_tokens_removed,
            static_cast<int64_t>(prompt.input_ids.size()));
  EXPECT_EQ(prompt.input_ids.size(), 380u);
}

TEST_F(PromptTest, MiddleTruncationKeepsBothEndsOfTheContext) {
  TaskData data = LongTask(20);
  PromptOptions options;
  options.max_length = 400;
  options.truncation = Truncation::kContextMiddle;
  ASSERT_OK_AND_ASSIGN(Prompt prompt, BuildPrompt(data, data.examples[0], *tokenizer_, options));
  EXPECT_LE(prompt.input_ids.size(), 380u);
  EXPECT_THAT(prompt.text, HasSubstr("Demo passage.\n\nQuestion: a demo\nAnswer: yes\n\n"
                                     "Document (Title: Passage 0): passage 0"));
  EXPECT_THAT(prompt.text, HasSubstr("Passage 59): passage 59 tells about river 413 and its "
                                     "towns.\n\nQuestion: which river is longest\nAnswer:"));
  EXPECT_EQ(prompt.text.find("Passage 30)"), std::string::npos);
}

TEST_F(PromptTest, TruncationWithTheChatTemplateAndManyLengths) {
  TaskData data = LongTask(10);
  PromptOptions options;
  options.use_chat_template = true;
  for (int64_t max_length : {150, 200, 333, 500, 901}) {
    for (Truncation truncation : {Truncation::kContextEnd, Truncation::kContextMiddle}) {
      options.max_length = max_length;
      options.truncation = truncation;
      ASSERT_OK_AND_ASSIGN(Prompt prompt,
                           BuildPrompt(data, data.examples[0], *tokenizer_, options));
      EXPECT_LE(static_cast<int64_t>(prompt.input_ids.size()), max_length - 10);
      EXPECT_TRUE(absl::EndsWith(prompt.text,
                                 "Question: which river is longest<|eot_id|>"
                                 "<|start_header_id|>assistant<|end_header_id|>\n\n"));
      EXPECT_THAT(prompt.text, HasSubstr("Instructions.\n\nDemo passage."));
    }
  }
}

TEST_F(PromptTest, PromptsThatCannotFitAreRefused) {
  TaskData data = LongTask(20);
  PromptOptions options;
  options.max_length = 40;  // Instructions, demo and question alone are longer.
  EXPECT_THAT(BuildPrompt(data, data.examples[0], *tokenizer_, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("without its context")));
  options.max_length = 20;
  EXPECT_THAT(BuildPrompt(data, data.examples[0], *tokenizer_, options),
              StatusIs(absl::StatusCode::kInvalidArgument));

  options.max_length = 131072;
  options.model_max_length = 65536;
  EXPECT_THAT(BuildPrompt(data, data.examples[0], *tokenizer_, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("65536")));
  options.allow_extrapolation = true;
  EXPECT_OK(BuildPrompt(data, data.examples[0], *tokenizer_, options));
}

TEST(RenderLlama3ChatTest, TrimsMessagesAsTheTemplateDoes) {
  EXPECT_EQ(RenderLlama3Chat("\n  Hello there \n", std::nullopt),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

}  // namespace
}  // namespace prolong::evaluator::tasks
