// Named metric values in a fixed order: HELMET's Python dicts keep insertion order, and its
// output files list metrics in that order.
#ifndef PROLONG_EVALUATOR_METRICS_METRIC_VALUES_H_
#define PROLONG_EVALUATOR_METRICS_METRIC_VALUES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace prolong::evaluator::metrics {

// One value per metric name, e.g. {{"exact_match", 1}, {"f1", 0.5}}. True/false are 1/0.
using MetricValues = std::vector<std::pair<std::string, double>>;

// One column of values (one per example) per metric name.
using MetricColumns = std::vector<std::pair<std::string, std::vector<double>>>;

// The value named `name`, or nullptr.
inline const double* FindMetric(const MetricValues& values, absl::string_view name) {
  for (const auto& [key, value] : values) {
    if (key == name) return &value;
  }
  return nullptr;
}

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_METRIC_VALUES_H_
