// HELMET's tasks by dataset name, with what its configs set for each input length (configs/*.yaml
// and scripts/generate_configs.py of princeton-nlp/HELMET, commit 4526dfb): the data files, the
// number of test samples, demos, passages or key-value pairs, the generation length, the chat
// template and newline stopping.
//
//   ASSIGN_OR_RETURN(TaskConfig config, ResolveTask("kilt_nq", 32768));
//   // config.test_file == "kilt/nq-dev-multikilt_1000_k220_dep6.jsonl", config.shots == 2, ...
//
// HELMET's lengths are 4K (generate_configs only), 8K, 16K, 32K, 64K and 128K. Another length
// takes the settings of the largest HELMET length not above it (of 4K below 4K); counts that
// make up the context in generated or sampled tasks (JSON KV pairs, ICL demos) scale with it.
// Thread-safe: the registry is immutable.
#ifndef PROLONG_EVALUATOR_TASKS_TASK_REGISTRY_H_
#define PROLONG_EVALUATOR_TASKS_TASK_REGISTRY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/metrics/category.h"

namespace prolong::evaluator::tasks {

// HELMET's categories, the same the metrics average into.
using metrics::Category;
using metrics::CategoryName;

// Which loader builds the examples.
enum class TaskKind {
  kJsonKv,          // generated (json_kv)
  kRulerNiah,       // generated (ruler_niah_*)
  kRag,             // KILT jsonl with retrieved passages (load_qa)
  kRerank,          // MS MARCO jsonl (load_msmarco_rerank)
  kIcl,             // exported Hugging Face splits (load_icl)
  kNarrativeQa,     // exported Hugging Face splits (load_narrativeqa)
  kInfBenchQa,      // InfiniteBench jsonl (load_infbench)
  kInfBenchChoice,  // InfiniteBench jsonl (load_infbench)
  kInfBenchSum,     // InfiniteBench jsonl (load_infbench)
  kMultiLexSum,     // exported Hugging Face splits (load_multi_lexsum)
};

// The input lengths HELMET reports (8K to 128K).
const std::vector<int64_t>& HelmetLengths();

struct TaskConfig {
  std::string name;     // Registry key: "json_kv", "ruler_niah_mk_2", "kilt_nq", ...
  std::string dataset;  // HELMET's dataset name at this length, as its output files carry it:
                        // "kilt_popqa_3", "icl_banking77_720shot_balance", "narrativeqa_32468".
  Category category;
  TaskKind kind;
  int64_t input_length = 0;       // HELMET's input_max_length.
  int generation_max_length = 0;  // max_new_tokens.
  bool use_chat_template = false;
  bool stop_new_line = false;  // Stop generating at a newline ("\n", "\n\n").
  int max_test_samples = 0;    // HELMET's max_test_samples (how many examples are scored).
  int shots = 0;  // Demos in the prompt. ICL: the labelled examples that make up the context.
  // JSON KV pairs, RAG or re-rank passages per example (from HELMET's file name), ICL demos;
  // 0 where the context is a document.
  int num_items = 0;
  // Relative to the data directory (HELMET's data/). For generated tasks, the file HELMET reads
  // instead (it names the output); for exported Hugging Face datasets, our layout (load_task.h).
  std::string test_file;
  std::string demo_file;   // Empty when the task has no demo file.
  bool generated = false;  // Built from a seed by us rather than read.
  // Long QA and summarization: the context is cut to this many reference-tokenizer tokens when
  // loading (HELMET's truncate_llama2; the dataset name's suffix), and documents shorter than
  // min_context_tokens are left out (filter_length). 0: neither.
  int64_t context_token_limit = 0;
  int64_t min_context_tokens = 0;
};

// Registry keys in a stable order (by category, then HELMET's order).
std::vector<std::string> TaskNames();

// The task's settings at `input_length` tokens. `name` is a registry key or a HELMET dataset
// name with its length suffix ("icl_trec_coarse_400shot_balance", "narrativeqa_7892"), which
// must then agree with `input_length`. INVALID_ARGUMENT listing the valid names for an unknown
// one, or naming the length when it is not positive.
absl::StatusOr<TaskConfig> ResolveTask(absl::string_view name, int64_t input_length);

}  // namespace prolong::evaluator::tasks

#endif  // PROLONG_EVALUATOR_TASKS_TASK_REGISTRY_H_
