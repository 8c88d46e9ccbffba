// HELMET's file-based loaders (data.py, commit 4526dfb), one per task family. Each returns the
// examples as HELMET's loader leaves them, in its order, with its samples and demos chosen by
// the same random draws (Python's `random` and numpy's permutations, py_random.h and
// numpy_random.h).
//
// File layouts (paths relative to HELMET's data/ directory, or as given):
//  - RAG (load_qa): KILT jsonl from HELMET's data.tar.gz, one question per line:
//      {"id"?, "question", "answers": [...], "ctxs": [{"title", "text", ...}], "s_pop"? (PopQA)}
//  - Re-rank (load_msmarco_rerank): MS MARCO jsonl from data.tar.gz:
//      {"qid", "query", "ctxs": [{"id", "title"?, "text", "label"}]}
//  - ICL (load_icl): the Hugging Face datasets HELMET loads, each split exported as jsonl
//    (`datasets.load_dataset(...)[split].to_json(path)`, one record per line, labels as
//    integers): CogComp/trec train/test {"text", "coarse_label", "fine_label"},
//    PolyAI/banking77 train/test {"text", "label"}, clinc_oos "plus" train/validation
//    {"text", "intent"}, xingkunliuxtracta/nlu_evaluation_data train {"text", "label"} (split
//    as HELMET splits it).
//  - NarrativeQA (load_narrativeqa): the Hugging Face "narrativeqa" test and train splits
//    exported the same way: {"document": {"text", ...}, "question": {"text"}, "answers":
//    [{"text"}]}.
//  - InfiniteBench (load_infbench): xinrongzhang2022/infinitebench's longbook_qa_eng,
//    longbook_choice_eng and longbook_sum_eng jsonl files as InfiniteBench distributes them:
//    {"id", "context", "input", "answer": [...], "options": [...]}.
//  - Multi-LexSum (load_multi_lexsum): allenai/multi_lexsum v20230518 validation and train
//    splits exported as jsonl: {"id", "sources": [...], "summary/short", ...}.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_LOADERS_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_LOADERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "evaluator/tasks/task_data.h"
#include "evaluator/tasks/task_registry.h"

namespace prolong::evaluator::tasks::internal {

// What every loader is told.
struct LoaderContext {
  const TaskConfig* config = nullptr;
  std::string test_path;  // Resolved paths.
  std::string demo_path;
  uint64_t seed = 42;
  int max_samples = 0;  // 0: all.
  int shots = 0;
  bool strict = false;
  // Counts tokens for the length filter and the pre-truncation (long QA, summaries).
  const tokenizer::Tokenizer* reference_tokenizer = nullptr;
};

absl::StatusOr<std::vector<Record>> LoadRag(const LoaderContext& context, LoadReport& report);
absl::StatusOr<std::vector<Record>> LoadRerank(const LoaderContext& context, LoadReport& report);
absl::StatusOr<std::vector<Record>> LoadIcl(const LoaderContext& context, LoadReport& report);
absl::StatusOr<std::vector<Record>> LoadNarrativeQa(const LoaderContext& context,
                                                    LoadReport& report);
absl::StatusOr<std::vector<Record>> LoadInfBench(const LoaderContext& context, LoadReport& report);
absl::StatusOr<std::vector<Record>> LoadMultiLexSum(const LoaderContext& context,
                                                    LoadReport& report);

// HELMET's balance_labels: `shots` items with every label equally often, in rounds of one item
// per label (label order: first appearance in `labels`), each round shuffled, drawn with
// random.Random(seed). Returns indices into `labels`.
std::vector<size_t> BalanceLabels(const std::vector<int64_t>& labels, size_t shots, uint64_t seed);

// Dataset.shuffle(seed=seed) followed by drop_duplicates(key) and select(range(count)): the
// first `count` indices of the numpy permutation whose keys were not seen before.
// FAILED_PRECONDITION when fewer than `count` distinct keys exist.
absl::StatusOr<std::vector<size_t>> ShuffledDistinct(const std::vector<std::string>& keys,
                                                     uint64_t seed, size_t count);

// HELMET's test-sample choice for RAG and re-rank: random.sample(sorted(set(keys)), count), then
// the records whose key was drawn, in file order. Keys are all integers or all strings (Python
// cannot sort a mix: INVALID_ARGUMENT).
absl::StatusOr<std::vector<size_t>> SampleByKey(const std::vector<nlohmann::ordered_json>& keys,
                                                uint64_t seed, size_t count);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_LOADERS_H_
