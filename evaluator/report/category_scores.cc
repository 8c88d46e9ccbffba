#include "evaluator/report/category_scores.h"

#include <map>
#include <string>

namespace prolong::evaluator {

std::vector<v1::CategoryScore> CategoryScores(const std::vector<v1::TaskResult>& results) {
  // category -> length -> reported metrics of its tasks
  std::map<std::string, std::map<int64_t, std::vector<double>>> by_category;
  std::vector<std::string> order;
  for (const v1::TaskResult& result : results) {
    const auto metric = result.metrics().find(result.primary_metric());
    if (metric == result.metrics().end()) continue;
    if (by_category.count(result.category()) == 0) order.push_back(result.category());
    by_category[result.category()][result.input_length()].push_back(metric->second);
  }
  auto mean = [](const std::vector<double>& values) {
    double sum = 0;
    for (double v : values) sum += v;
    return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
  };
  std::vector<v1::CategoryScore> scores;
  for (const std::string& category : order) {
    std::vector<double> per_length;
    for (const auto& [length, values] : by_category[category]) {
      v1::CategoryScore score;
      score.set_category(category);
      score.set_input_length(length);
      score.set_score(mean(values));
      per_length.push_back(score.score());
      scores.push_back(score);
    }
    v1::CategoryScore overall;
    overall.set_category(category);
    overall.set_input_length(0);
    overall.set_score(mean(per_length));
    scores.push_back(overall);
  }
  return scores;
}

}  // namespace prolong::evaluator
