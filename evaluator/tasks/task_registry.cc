#include "evaluator/tasks/task_registry.h"

#include <array>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace prolong::evaluator::tasks {
namespace {

// scripts/generate_configs.py's lengths_mapping: 4k, 8k, 16k, 32k, 64k, 128k.
constexpr std::array<int64_t, 6> kTableLengths = {4096, 8192, 16384, 32768, 65536, 131072};
using PerLength = std::array<int, 6>;

struct TaskEntry {
  const char* name;
  Category category;
  TaskKind kind;
  int generation_max_length;
  bool use_chat_template;
  bool stop_new_line;
  int max_test_samples;
  int shots;
  // Per HELMET length: JSON KV pairs, passages in the file name, or ICL demos; zeros if none.
  PerLength items;
  // The file name with {k} for the per-length count and {len} for the length.
  const char* test_file;
  const char* demo_file;
  // Long QA / summ: the reference-token limit is length - context_reserve (HELMET's postfix).
  int context_reserve;
  int64_t min_context_tokens;
};

// What HELMET's configs set (configs/*.yaml, scripts/generate_configs.py): recall and RAG and
// re-rank and ICL run without the chat template, long QA and summaries with it; RAG, re-rank
// and ICL stop at a newline. RULER takes no demos ("RULER does not support ICL demos").
const std::vector<TaskEntry>& Entries() {
  static const auto* entries = new std::vector<TaskEntry>{
      {"json_kv",
       Category::kRecall,
       TaskKind::kJsonKv,
       100,
       false,
       false,
       100,
       2,
       {50, 105, 220, 440, 900, 1800},
       "json_kv/test_k{k}_dep6.jsonl",
       "",
       0,
       0},
      {"ruler_niah_mk_2",
       Category::kRecall,
       TaskKind::kRulerNiah,
       50,
       false,
       false,
       100,
       0,
       {},
       "ruler/niah_multikey_2/validation_{len}.jsonl",
       "",
       0,
       0},
      {"ruler_niah_mk_3",
       Category::kRecall,
       TaskKind::kRulerNiah,
       100,
       false,
       false,
       100,
       0,
       {},
       "ruler/niah_multikey_3/validation_{len}.jsonl",
       "",
       0,
       0},
      {"ruler_niah_mv",
       Category::kRecall,
       TaskKind::kRulerNiah,
       50,
       false,
       false,
       100,
       0,
       {},
       "ruler/niah_multivalue/validation_{len}.jsonl",
       "",
       0,
       0},
      {"kilt_nq",
       Category::kRag,
       TaskKind::kRag,
       20,
       false,
       true,
       100,
       2,
       {20, 50, 105, 220, 440, 1000},
       "kilt/nq-dev-multikilt_1000_k{k}_dep6.jsonl",
       "kilt/nq-train-multikilt_1000_k3_dep6.jsonl",
       0,
       0},
      {"kilt_triviaqa",
       Category::kRag,
       TaskKind::kRag,
       20,
       false,
       true,
       100,
       2,
       {20, 50, 105, 220, 440, 1000},
       "kilt/triviaqa-dev-multikilt_1000_k{k}_dep6.jsonl",
       "kilt/triviaqa-train-multikilt_1000_k3_dep6.jsonl",
       0,
       0},
      {"kilt_hotpotqa",
       Category::kRag,
       TaskKind::kRag,
       20,
       false,
       true,
       100,
       2,
       {20, 50, 105, 220, 440, 1000},
       "kilt/hotpotqa-dev-multikilt_1000_k{k}_dep3.jsonl",
       "kilt/hotpotqa-train-multikilt_1000_k3_dep3.jsonl",
       0,
       0},
      {"kilt_popqa",
       Category::kRag,
       TaskKind::kRag,
       20,
       false,
       true,
       100,
       2,
       {20, 50, 105, 220, 440, 1000},
       "kilt/popqa_test_1000_k{k}_dep6.jsonl",
       "kilt/popqa_test_1000_k3_dep6.jsonl",
       0,
       0},
      {"msmarco_rerank_psg",
       Category::kRerank,
       TaskKind::kRerank,
       200,
       false,
       true,
       100,
       2,
       {14, 50, 130, 285, 600, 1000},
       "msmarco/test_reranking_data_k{k}_dep3.jsonl",
       "msmarco/test_reranking_data_k10_dep3.jsonl",
       0,
       0},
      {"icl_trec_coarse",
       Category::kIcl,
       TaskKind::kIcl,
       20,
       false,
       true,
       500,
       0,
       {200, 400, 800, 1600, 3300, 6600},
       "icl/trec/test.jsonl",
       "icl/trec/train.jsonl",
       0,
       0},
      {"icl_trec_fine",
       Category::kIcl,
       TaskKind::kIcl,
       20,
       false,
       true,
       500,
       0,
       {200, 400, 800, 1600, 3200, 6400},
       "icl/trec/test.jsonl",
       "icl/trec/train.jsonl",
       0,
       0},
      {"icl_banking77",
       Category::kIcl,
       TaskKind::kIcl,
       20,
       false,
       true,
       500,
       0,
       {180, 360, 720, 1450, 2900, 5900},
       "icl/banking77/test.jsonl",
       "icl/banking77/train.jsonl",
       0,
       0},
      {"icl_clinic150",
       Category::kIcl,
       TaskKind::kIcl,
       20,
       false,
       true,
       500,
       0,
       {220, 440, 880, 1750, 3525, 7050},
       "icl/clinc_oos_plus/validation.jsonl",
       "icl/clinc_oos_plus/train.jsonl",
       0,
       0},
      // NLU has one split; HELMET splits it (train_test_split(test_size=0.1, seed)).
      {"icl_nlu",
       Category::kIcl,
       TaskKind::kIcl,
       20,
       false,
       true,
       500,
       0,
       {250, 510, 1020, 2040, 4080, 8296},
       "icl/nlu_evaluation_data/train.jsonl",
       "",
       0,
       0},
      // "for longqa, we truncate by the length - 200 - the generation length"; narrativeqa keeps
      // documents over 131072 Llama-2 tokens, the others at least 65536.
      {"narrativeqa",
       Category::kLongQa,
       TaskKind::kNarrativeQa,
       100,
       true,
       false,
       100,
       2,
       {},
       "narrativeqa/test.jsonl",
       "narrativeqa/train.jsonl",
       200 + 100,
       131073},
      {"infbench_qa_eng",
       Category::kLongQa,
       TaskKind::kInfBenchQa,
       10,
       true,
       false,
       100,
       2,
       {},
       "infbench/longbook_qa_eng.jsonl",
       "",
       200 + 10,
       65536},
      {"infbench_choice_eng",
       Category::kLongQa,
       TaskKind::kInfBenchChoice,
       10,
       true,
       false,
       100,
       2,
       {},
       "infbench/longbook_choice_eng.jsonl",
       "",
       200 + 10,
       65536},
      {"infbench_sum_eng",
       Category::kSumm,
       TaskKind::kInfBenchSum,
       1200,
       true,
       false,
       100,
       2,
       {},
       "infbench/longbook_sum_eng.jsonl",
       "",
       200 + 1200,
       65536},
      // "for multi lexsum, we truncate by the length - 300 (prompt and buffer) - 400".
      {"multi_lexsum",
       Category::kSumm,
       TaskKind::kMultiLexSum,
       400,
       true,
       false,
       100,
       2,
       {},
       "multi_lexsum/validation.jsonl",
       "multi_lexsum/train.jsonl",
       300 + 400,
       65536},
  };
  return *entries;
}

// The largest table length not above `length` (the first below 4K).
size_t TableIndex(int64_t length) {
  size_t index = 0;
  for (size_t i = 0; i < kTableLengths.size(); ++i) {
    if (kTableLengths[i] <= length) index = i;
  }
  return index;
}

// The count at `length`: the table's at a table length, else scaled from the row it falls in.
int ItemsAt(const PerLength& items, int64_t length) {
  const size_t index = TableIndex(length);
  if (kTableLengths[index] == length) return items[index];
  const double scaled =
      std::round(static_cast<double>(items[index]) * length / kTableLengths[index]);
  return std::max(2, static_cast<int>(scaled));
}

std::string Expand(const char* pattern, int items, int64_t length) {
  std::string out = pattern;
  size_t at;
  while ((at = out.find("{k}")) != std::string::npos) out.replace(at, 3, std::to_string(items));
  while ((at = out.find("{len}")) != std::string::npos) {
    out.replace(at, 5, std::to_string(length));
  }
  return out;
}

TaskConfig Build(const TaskEntry& entry, int64_t length) {
  TaskConfig config;
  config.name = entry.name;
  config.category = entry.category;
  config.kind = entry.kind;
  config.input_length = length;
  config.generation_max_length = entry.generation_max_length;
  config.use_chat_template = entry.use_chat_template;
  config.stop_new_line = entry.stop_new_line;
  config.max_test_samples = entry.max_test_samples;
  config.shots = entry.shots;
  config.generated = entry.kind == TaskKind::kJsonKv || entry.kind == TaskKind::kRulerNiah;
  config.dataset = entry.name;

  const size_t index = TableIndex(length);
  int file_items = entry.items[index];  // Files exist for HELMET's counts only.
  switch (entry.kind) {
    case TaskKind::kJsonKv:
      config.num_items = ItemsAt(entry.items, length);
      file_items = config.num_items;
      break;
    case TaskKind::kRag:
    case TaskKind::kRerank:
      config.num_items = file_items;
      if (config.name == "kilt_popqa") config.dataset = "kilt_popqa_3";  // log10 popularity < 3
      break;
    case TaskKind::kIcl:
      config.num_items = config.shots = ItemsAt(entry.items, length);
      config.dataset = absl::StrCat(entry.name, "_", config.shots, "shot_balance");
      break;
    default:
      break;
  }
  if (entry.context_reserve > 0) {
    config.context_token_limit = std::max<int64_t>(1, length - entry.context_reserve);
    config.min_context_tokens = entry.min_context_tokens;
    config.dataset = absl::StrCat(entry.name, "_", config.context_token_limit);
  }
  config.test_file = Expand(entry.test_file, file_items, length);
  config.demo_file = entry.demo_file;
  return config;
}

}  // namespace

const std::vector<int64_t>& HelmetLengths() {
  static const auto* lengths = new std::vector<int64_t>{8192, 16384, 32768, 65536, 131072};
  return *lengths;
}

std::vector<std::string> TaskNames() {
  std::vector<std::string> names;
  for (const TaskEntry& entry : Entries()) names.push_back(entry.name);
  return names;
}

absl::StatusOr<TaskConfig> ResolveTask(absl::string_view name, int64_t input_length) {
  if (input_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("input length ", input_length, " for task '", name, "': must be positive"));
  }
  for (const TaskEntry& entry : Entries()) {
    if (name == entry.name) return Build(entry, input_length);
  }
  // A HELMET dataset name carries its length-dependent suffix; it must be this length's.
  for (const TaskEntry& entry : Entries()) {
    if (!absl::StartsWith(name, absl::StrCat(entry.name, "_"))) continue;
    TaskConfig config = Build(entry, input_length);
    if (config.dataset == name) return config;
    return absl::InvalidArgumentError(absl::StrCat("task '", name, "' does not run at length ",
                                                   input_length, "; there it is '", config.dataset,
                                                   "'"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown task '", name, "'; valid tasks: ", absl::StrJoin(TaskNames(), ", ")));
}

}  // namespace prolong::evaluator::tasks
