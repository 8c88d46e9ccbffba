// HELMET's output files: `{"args": ..., "data": [...], "metrics": ..., "averaged_metrics": ...}`
// with a FILE.score beside it holding the averages (eval.py's run_test), read, written, and
// rescored from the outputs they hold.
#ifndef PROLONG_EVALUATOR_METRICS_HELMET_OUTPUT_H_
#define PROLONG_EVALUATOR_METRICS_HELMET_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/metrics/dataset.h"
#include "evaluator/metrics/metric_values.h"
#include "evaluator/metrics/score_example.h"

namespace prolong::evaluator::metrics {

struct HelmetOutput {
  std::string dataset;  // HELMET's name, e.g. "kilt_nq"; written as args.datasets
  // HELMET's "args" (its command-line settings); kept as read, or {} for ours.
  Json args = Json::object();
  // The examples: each as HELMET writes it (the task's fields, "output", "input_len",
  // "output_len", "parsed_output" and its metrics).
  std::vector<Json> data;
  MetricColumns metrics;          // per metric, one value per example
  MetricValues averaged_metrics;  // eval.py's averages (x100 but "_len")
  // Other top-level fields ("throughput", "memory_usage"), kept in order.
  Json extra = Json::object();
};

// Scores every example of `data` for `dataset` (ScoreExample, re-rank cutoffs from the first
// example as HELMET takes them), stores each example's metrics and "parsed_output" in it, and
// fills metrics and averaged_metrics the way eval.py does: the post_process metrics in their
// order, then input_len and output_len when every example has them as token counts (whole
// numbers from 0; a file with another is averaged without the column). INVALID_ARGUMENT naming
// "data[i]" for a bad example, or for no examples.
absl::StatusOr<HelmetOutput> ScoreOutputs(const DatasetSpec& dataset, std::vector<Json> data);

// Reads an output file (ours or HELMET's). The dataset comes from args.datasets, or else from
// the file name (DatasetFromOutputName). "metrics" and "averaged_metrics" are read as stored.
// NOT_FOUND if the file cannot be opened; INVALID_ARGUMENT naming the file for malformed JSON
// (with line and column) or a missing or malformed field.
absl::StatusOr<HelmetOutput> ReadHelmetOutput(const std::string& path);

// Writes `output` to `path` (JSON, 4-space indent, non-ASCII escaped, as Python's json.dump)
// and its averaged_metrics to `path`.score, each atomically. Metrics that are truth values in
// HELMET (exact_match, substring_exact_match) are written as true/false and num_preds as an
// integer, so HELMET's scripts read the file as one of theirs.
absl::Status WriteHelmetOutput(const HelmetOutput& output, const std::string& path);

struct RescoreResult {
  DatasetSpec dataset;
  HelmetOutput output;           // with every example's metrics recomputed
  MetricValues stored_averages;  // the file's averaged_metrics before rescoring (may be empty)
};

// Reads the file at `path` and recomputes every example's metrics and the averages from the
// outputs it holds. Errors name the file.
absl::StatusOr<RescoreResult> Rescore(const std::string& path);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_HELMET_OUTPUT_H_
