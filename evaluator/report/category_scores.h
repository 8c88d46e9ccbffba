// The categories' scores of a set of task results: HELMET shows a model per category, the mean
// of its tasks' reported metrics at each input length, and their mean over lengths.
#ifndef PROLONG_EVALUATOR_REPORT_CATEGORY_SCORES_H_
#define PROLONG_EVALUATOR_REPORT_CATEGORY_SCORES_H_

#include <vector>

#include "prolong/v1/evaluator.pb.h"

namespace prolong::evaluator {

// Per category, in order of first appearance: one score per input length (ascending), then
// input_length 0 for the mean over those lengths. Results without their primary metric (a
// judged one no file holds) are left out.
std::vector<v1::CategoryScore> CategoryScores(const std::vector<v1::TaskResult>& results);

}  // namespace prolong::evaluator

#endif  // PROLONG_EVALUATOR_REPORT_CATEGORY_SCORES_H_
