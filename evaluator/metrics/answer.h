// HELMET's answer metrics (princeton-nlp/HELMET utils.py, commit 4526dfb): SQuAD-style
// normalization, exact match, substring exact match, token F1, parse_output and the maximum
// over gold answers. Pure functions, thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_ANSWER_H_
#define PROLONG_EVALUATOR_METRICS_ANSWER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace prolong::evaluator::metrics {

// Lowercases as Python's str.lower() (Unicode-wide), deletes the 32 ASCII punctuation
// characters without inserting a space ("Science-fiction" -> "sciencefiction"), replaces the
// whole words a, an and the (words as Python's re sees them on str: letters, digits and "_" of
// any script) by a space, and collapses whitespace runs to one space, trimming the ends.
std::string NormalizeAnswer(absl::string_view text);

// normalize(prediction) == normalize(gold).
bool ExactMatch(absl::string_view prediction, absl::string_view gold);

// normalize(gold) is a substring of normalize(prediction): "1" is found in "11", and an empty
// gold in anything.
bool SubstringExactMatch(absl::string_view prediction, absl::string_view gold);

// Token F1 on normalized text, 0 when no token is shared, and 0 when either side normalizes to
// "yes", "no" or "noanswer" and the two differ.
double TokenF1(absl::string_view prediction, absl::string_view gold);

// HELMET's parse_output: the rest of the line after the first case-insensitive occurrence of
// `prefix` (a literal) anywhere in `output`, or the first line when there is none; stripped of
// whitespace, of a repeated prefix at its start, and of whitespace again. A newline right
// after the prefix gives "".
std::string ParseOutput(absl::string_view output, absl::string_view prefix = "Answer:");

// The gold answers of an example's "answer" field: a string, a list of strings, or a list of
// lists of strings (flattened, as HELMET's drqa_metric_max_over_ground_truths does when the
// first element is a list). INVALID_ARGUMENT for an empty list, a non-string answer, or lists
// mixed with strings (on which HELMET's scorer fails).
absl::StatusOr<std::vector<std::string>> FlattenGolds(const nlohmann::ordered_json& answer);

// The maximum of `metric(prediction, gold)` over golds (which must not be empty).
template <typename Metric>
double MaxOverGolds(Metric metric, absl::string_view prediction,
                    const std::vector<std::string>& golds) {
  double best = metric(prediction, golds.front());
  for (size_t i = 1; i < golds.size(); ++i) {
    const double score = metric(prediction, golds[i]);
    if (score > best) best = score;
  }
  return best;
}

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_ANSWER_H_
