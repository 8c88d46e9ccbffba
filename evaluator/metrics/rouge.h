// ROUGE-L and ROUGE-Lsum as Google's rouge-score computes them with
// RougeScorer(["rougeL", "rougeLsum"], use_stemmer=True), the scorer HELMET's
// calculate_metrics builds. Pure functions, thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_ROUGE_H_
#define PROLONG_EVALUATOR_METRICS_ROUGE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace prolong::evaluator::metrics {

struct RougeScore {
  double precision = 0;
  double recall = 0;
  double fmeasure = 0;
};

// rouge-score's default tokenizer: lowercase as Python's str.lower(), every character outside
// [a-z0-9] becomes a separator (so CJK text and accented letters vanish), and tokens longer
// than 3 characters are Porter-stemmed as NLTK does.
std::vector<std::string> RougeTokenize(absl::string_view text);

// LCS of the whole texts' tokens. All zero when either side has no token.
RougeScore RougeL(absl::string_view target, absl::string_view prediction);

// Summary-level LCS over sentences split on "\n" only (empty lines dropped), each reference
// token counted at most as often as it occurs on both sides (ROUGE 1.5.5's rule).
RougeScore RougeLsum(absl::string_view target, absl::string_view prediction);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_ROUGE_H_
