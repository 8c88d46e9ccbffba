// Evaluations for people and for CI gates: the scores as a table (category by input length,
// then each task), two evaluations side by side, the regressions of one against a baseline, and
// evaluation files (the prolong.v1.Evaluation message as JSON). Only results of the same task,
// length and config hash are ever compared: another prompt or dataset is another experiment.
// No LibTorch.
#ifndef PROLONG_EVALUATOR_REPORT_EVALUATION_REPORT_H_
#define PROLONG_EVALUATOR_REPORT_EVALUATION_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prolong/v1/evaluator.pb.h"

namespace prolong::evaluator {

// Categories as rows, input lengths as columns (and "avg" over them), then one line per task
// and length with its reported metric and every other metric.
std::string FormatScores(const v1::Evaluation& evaluation);

// The categories' scores of A and B side by side with B - A, computed over the (task, length)
// results both hold with the same config hash; the results only one holds are listed apart.
std::string FormatComparison(const v1::Evaluation& a, const v1::Evaluation& b);

struct Regression {
  std::string category;
  int64_t input_length = 0;
  double baseline = 0;
  double current = 0;
};

// Each category at each input length whose score in `current` is more than `max_drop` points
// below `baseline`'s, over the results both hold with the same config hash.
std::vector<Regression> FindRegressions(const v1::Evaluation& baseline,
                                        const v1::Evaluation& current, double max_drop);

// The Evaluation message as JSON (proto3 JSON mapping, field names as in the .proto).
std::string EvaluationJson(const v1::Evaluation& evaluation);
// An evaluation file: EvaluationJson, written atomically.
absl::Status WriteEvaluationFile(const v1::Evaluation& evaluation, const std::string& path);
// NOT_FOUND for a missing file; INVALID_ARGUMENT naming the file for one that is not an
// evaluation.
absl::StatusOr<v1::Evaluation> ReadEvaluationFile(const std::string& path);

}  // namespace prolong::evaluator

#endif  // PROLONG_EVALUATOR_REPORT_EVALUATION_REPORT_H_
