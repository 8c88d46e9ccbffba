// One example scored as HELMET's data.py post-processing scores it, by dataset name: the
// metrics eval.py averages and the parsed output it saves. Pure functions, thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_SCORE_EXAMPLE_H_
#define PROLONG_EVALUATOR_METRICS_SCORE_EXAMPLE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/metrics/dataset.h"
#include "evaluator/metrics/metric_values.h"
#include "nlohmann/json.hpp"

namespace prolong::evaluator::metrics {

using Json = nlohmann::ordered_json;

// HELMET's calculate_metrics for one prediction: exact_match, f1, substring_exact_match,
// rougeL_f1, rougeL_recall, rougeLsum_f1, rougeLsum_recall, each the maximum over `golds`
// (which must not be empty).
MetricValues CalculateMetrics(absl::string_view prediction, const std::vector<std::string>& golds);

// RULER's recall: the share of golds found, lowercased, in the lowercased raw output.
double RulerRecall(absl::string_view output, const std::vector<std::string>& golds);

struct ExampleScore {
  MetricValues metrics;  // in the order HELMET's post_process returns them
  Json parsed_output;    // a string, or for re-rank an object {doc id: score} in ranked order
};

struct ScoreOptions {
  // Re-rank: the number of candidate documents that decides the cutoffs (HELMET takes it from
  // the first example of the file). Unset: this example's number of qrels.
  std::optional<int> rerank_candidates;
};

// Scores `example`, an object as HELMET writes it in an output file's "data" list:
//  - "output" (string): the model's output, with the prompt's answer prefix prepended when
//    the chat template is off, as eval.py saves it;
//  - "answer": golds (a string, a list or a list of lists); for InfiniteBench choice
//    [letter, "A. option text"]; for RULER a list of values (a string counts per character,
//    as HELMET iterates it);
//  - re-rank: "qrel" (list of [doc id, label] with the label a string or an integer) instead.
// INVALID_ARGUMENT naming the field when one is missing or malformed.
absl::StatusOr<ExampleScore> ScoreExample(const DatasetSpec& dataset, const Json& example,
                                          const ScoreOptions& options = {});

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_SCORE_EXAMPLE_H_
