#include "evaluator/tasks/internal/templates.h"

namespace prolong::evaluator::tasks::internal {
namespace {

PromptTemplates Join(const char* user, const char* system, const char* separator) {
  PromptTemplates templates;
  templates.user = user;
  templates.system = system;
  templates.prompt = templates.user + separator + templates.system;
  return templates;
}

// load_json_kv (prompt from lost-in-the-middle's kv_retrieval.prompt).
constexpr char kJsonKvUser[] =
    "{context}\n\nExtract the value corresponding to the specified key in the JSON object "
    "below.\n\n{demos}Key: {question}";

// load_ruler, from RULER's scripts/data/synthetic/constants.py.
constexpr char kNiahUser[] =
    "A special magic {type_needle_v} is hidden within the following text. Make sure to memorize "
    "it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat is the special "
    "magic {type_needle_v} for {query} mentioned in the provided text?";
constexpr char kNiahSystem[] =
    "The special magic {type_needle_v} for {query} mentioned in the provided text is";
constexpr char kNiahMvUser[] =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to "
    "memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all "
    "the special magic {type_needle_v} for {query} mentioned in the provided text?";
constexpr char kNiahMvSystem[] =
    "The special magic {type_needle_v} for {query} mentioned in the provided text are";

// load_qa (HELMET's "nq_bad" variant is not one of its tasks).
constexpr char kRagUser[] =
    "Use the given documents to write a concise and short answer to the question. Write your "
    "answer in the following format:\nAnswer: [answer]\n\n{demos}{context}\n\nQuestion: "
    "{question}";

// load_msmarco_rerank ("relelvant" is HELMET's spelling).
constexpr char kRerankUser[] =
    "You are provided with a list of documents, each indicated by their ID. Rank each document "
    "based on their relevance to the question in descending order from most relelvant to least "
    "relevant texts. Include all documents in the rankings. Write your answer using the unique "
    "IDs, with the following format:\nRanking: ID3 > ID1 > ID2\n\n{demos}{context}\n\nQuery: "
    "{question}";

// load_icl: "{{label}}" is a literal "{label}" after formatting.
constexpr char kIclUser[] =
    "Use the provided mapping from the text to label to assign a label to the text. Only output "
    "\"label: {{label}}\" and nothing else. \n\n{context}\n\n{question}";

// load_narrativeqa.
constexpr char kNarrativeQaUser[] =
    "You are given a story, which can be either a novel or a movie script, and a question. "
    "Answer the question as concisely as you can, using a single phrase if possible.\n\n"
    "{demo}{context}\n\nQuestion: {question}";

// load_infbench (after InfiniteBench's src/prompt.py).
constexpr char kInfBenchQaUser[] =
    "You are given a story and a question. Answer the question as concisely as you can, using a "
    "single phrase if possible.\n\n{demo}{context}\n\nQuestion: {question}";
constexpr char kInfBenchChoiceUser[] =
    "You are given a story and a question with multiple choices. Choose the best answer from "
    "the options provided. Only one of the following options is correct, output the answer "
    "using one single letter (A, B, C, or D). Don't say anything else.\n\n{demo}{context}\n\n"
    "Question: {question}\nOptions:\n{options}";
constexpr char kInfBenchSumUser[] =
    "You are given a book and you are tasked to summarize it. Write a summary of about 1000 to "
    "1200 words. Only write about the plot and characters of the story. Do not discuss the "
    "themes or background of the book. Do not provide any analysis or commentary.\n\n"
    "{demo}{context}\n\nNow summarize the book.";

// load_multi_lexsum.
constexpr char kMultiLexSumUser[] =
    "You are given the legal documents in a civil rights lawsuit, and you are tasked to "
    "summarize the case. Write a concise summary of one paragraph (200 to 250 words). The "
    "summary should contain a short description of the background, the parties involved, and "
    "the outcomes of the case.\n\n{demo}Legal documents:\n{context}\n\nNow please summarize the "
    "case.";

}  // namespace

PromptTemplates TemplatesFor(const TaskConfig& config) {
  switch (config.kind) {
    case TaskKind::kJsonKv:
      return Join(kJsonKvUser, "Corresponding value:", "\n");
    case TaskKind::kRulerNiah:
      if (config.name == "ruler_niah_mv") return Join(kNiahMvUser, kNiahMvSystem, "\n");
      return Join(kNiahUser, kNiahSystem, "\n");
    case TaskKind::kRag:
      return Join(kRagUser, "Answer:", "\n");
    case TaskKind::kRerank:
      return Join(kRerankUser, "Ranking:", "\n");
    case TaskKind::kIcl:
      return Join(kIclUser, "label:", "\n");
    case TaskKind::kNarrativeQa:
      return Join(kNarrativeQaUser, "Answer:", "\n");
    case TaskKind::kInfBenchQa:
      return Join(kInfBenchQaUser, "Answer:", "\n\n");
    case TaskKind::kInfBenchChoice:
      return Join(kInfBenchChoiceUser, "Answer:", "\n\n");
    case TaskKind::kInfBenchSum:
      return Join(kInfBenchSumUser, "Summary:", "\n\n");
    case TaskKind::kMultiLexSum:
      return Join(kMultiLexSumUser, "Summary:", "\n\n");
  }
  return {};
}

}  // namespace prolong::evaluator::tasks::internal
