// The categories HELMET shows a model's scores by, shared by the tasks (which category a task
// belongs to) and the metrics (which a dataset is averaged into).
#ifndef PROLONG_EVALUATOR_METRICS_CATEGORY_H_
#define PROLONG_EVALUATOR_METRICS_CATEGORY_H_

#include "absl/strings/string_view.h"

namespace prolong::evaluator::metrics {

// kRuler holds the RULER tasks outside HELMET's Recall average (its commented-out "RULER"
// average); kCite is ALCE, which HELMET scores elsewhere.
enum class Category { kRecall, kRag, kRerank, kIcl, kLongQa, kSumm, kRuler, kCite };

// "recall", "rag", "rerank", "icl", "longqa", "summ", "ruler", "cite".
absl::string_view CategoryName(Category category);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_CATEGORY_H_
