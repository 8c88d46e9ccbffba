// HELMET's datasets by name: how each is scored (data.py's load_data dispatch and
// post_process), its category, and the metric HELMET's scripts/collect_results.py reports for
// it; and HELMET's output file names (eval.py). Pure functions, thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_DATASET_H_
#define PROLONG_EVALUATOR_METRICS_DATASET_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/metrics/category.h"

namespace prolong::evaluator::metrics {

// Which of data.py's post_process functions scores the dataset.
enum class Scoring {
  kQa,           // default_post_process: raw and "Answer:"-parsed output, max per metric
  kJsonKv,       // the same with the prefix "corresponding value:"
  kSummary,      // multi_lexsum: the same with the prefix "Summary:"
  kIcl,          // only the output parsed after "label:"
  kChoice,       // InfiniteBench multiple choice: SubEM replaced by a raw "A. option" test
  kRulerRecall,  // share of golds found case-insensitively in the raw output
  kRerank,       // parse_rankings and trec_eval's measures
};

struct DatasetSpec {
  std::string name;  // as given, e.g. "kilt_popqa_3" or "icl_banking77_5900shot_balance"
  Category category = Category::kRecall;
  Scoring scoring = Scoring::kQa;
  // The metric collect_results.py reports. For NarrativeQA and the summaries it is a GPT-4o
  // judge's score ("gpt-4-score", "gpt-4-f1"), which no output file holds until HELMET's
  // judge scripts run; `judged` is then true.
  std::string primary_metric;
  bool judged = false;
  // The metric to show for the dataset here: primary_metric, or for judged datasets the
  // computed one reported next to it (rougeL_f1 for QA, rougeLsum_f1 for summaries).
  std::string reported_metric;
};

// The spec for a HELMET dataset name, matched as load_data does (substrings, in its order:
// "popqa", then "nq"/"hotpotqa"/"triviaqa", "json_kv" exactly, "narrativeqa", "msmarco",
// "alce", "icl", "multi_lexsum", "ruler", "infbench"). INVALID_ARGUMENT naming the known
// families for an unknown name; UNIMPLEMENTED for ALCE and LongProc, which HELMET scores with
// other programs.
absl::StatusOr<DatasetSpec> LookupDataset(absl::string_view name);

// The dataset of a HELMET output file from its name
// ("{dataset}_{tag}_{test_name}_in{length}_size..._{seed}.json", or that plus ".score"): the
// longest leading part, cut at an underscore, that is a dataset name HELMET's configs use.
// nullopt when the name has no such part.
std::optional<std::string> DatasetFromOutputName(absl::string_view path);

// Whether `name` has the shape of a dataset name in HELMET's configs (e.g. "json_kv",
// "kilt_nq", "kilt_popqa_3", "ruler_niah_mk_2", "icl_trec_fine_400shot_balance",
// "narrativeqa_130772", "infbench_sum_eng_129672").
bool IsHelmetDatasetName(absl::string_view name);

// The settings eval.py writes into an output file's name.
struct OutputNameSettings {
  std::string dataset;
  std::string tag = "eval";
  std::string test_name;  // the test file's base name without extension; "" when none
  int input_max_length = 131072;
  std::optional<int> max_test_samples;  // None in Python when unset
  int shots = 2;
  bool do_sample = false;
  int generation_max_length = 10;
  int generation_min_length = 0;
  double temperature = 0.0;
  double top_p = 1.0;
  bool use_chat_template = false;
  int seed = 42;
  int popularity_threshold = 3;  // appended to the tag for the dataset named exactly "popqa"
};

// eval.py's output file name (no directory), e.g. "json_kv_eval_test_k1800_dep6_in131072_
// size100_shots2_sampFalsemax100min0t0.0p1.0_chatFalse_42.json" (one name, broken here).
std::string OutputFileName(const OutputNameSettings& settings);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_DATASET_H_
