#include "evaluator/report/evaluation_report.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "evaluator/report/category_scores.h"
#include "google/protobuf/util/json_util.h"

namespace prolong::evaluator {
namespace {

// "8K" for multiples of 1,024, the number otherwise.
std::string LengthName(int64_t length) {
  if (length == 0) return "avg";
  if (length % 1024 == 0) return absl::StrCat(length / 1024, "K");
  return absl::StrCat(length);
}

std::string Score(const v1::TaskResult& result) {
  const auto metric = result.metrics().find(result.primary_metric());
  return metric == result.metrics().end() ? "-" : absl::StrFormat("%.2f", metric->second);
}

// The categories' order of first appearance and their input lengths, ascending.
std::pair<std::vector<std::string>, std::vector<int64_t>> Axes(
    const std::vector<v1::CategoryScore>& scores) {
  std::vector<std::string> categories;
  std::set<int64_t> lengths;
  for (const v1::CategoryScore& score : scores) {
    if (std::find(categories.begin(), categories.end(), score.category()) == categories.end()) {
      categories.push_back(score.category());
    }
    if (score.input_length() > 0) lengths.insert(score.input_length());
  }
  std::vector<int64_t> columns(lengths.begin(), lengths.end());
  columns.push_back(0);  // the average over lengths
  return {categories, columns};
}

const v1::CategoryScore* FindScore(const std::vector<v1::CategoryScore>& scores,
                                   const std::string& category, int64_t length) {
  for (const v1::CategoryScore& score : scores) {
    if (score.category() == category && score.input_length() == length) return &score;
  }
  return nullptr;
}

std::string ResultName(const v1::TaskResult& result) {
  return absl::StrCat(result.task(), " @", LengthName(result.input_length()));
}

// The results of A and B for the same task, length and config hash, in A's order.
struct Matched {
  std::vector<v1::TaskResult> a, b;
  std::vector<std::string> unmatched;  // described
};

Matched Match(const v1::Evaluation& a, const v1::Evaluation& b) {
  Matched matched;
  std::vector<bool> used(b.results_size(), false);
  for (const v1::TaskResult& ra : a.results()) {
    bool found = false;
    for (int j = 0; j < b.results_size(); ++j) {
      const v1::TaskResult& rb = b.results(j);
      if (used[j] || rb.task() != ra.task() || rb.input_length() != ra.input_length()) continue;
      if (rb.config_hash() != ra.config_hash()) {
        matched.unmatched.push_back(
            absl::StrCat(ResultName(ra), ": different prompts or settings (", ra.config_hash(),
                         " against ", rb.config_hash(), "), not compared"));
        used[j] = true;
        found = true;
        break;
      }
      matched.a.push_back(ra);
      matched.b.push_back(rb);
      used[j] = true;
      found = true;
      break;
    }
    if (!found) matched.unmatched.push_back(absl::StrCat(ResultName(ra), ": only in A"));
  }
  for (int j = 0; j < b.results_size(); ++j) {
    if (!used[j])
      matched.unmatched.push_back(absl::StrCat(ResultName(b.results(j)), ": only in B"));
  }
  return matched;
}

}  // namespace

std::string FormatScores(const v1::Evaluation& evaluation) {
  const std::vector<v1::CategoryScore> scores(evaluation.category_scores().begin(),
                                              evaluation.category_scores().end());
  const auto [categories, columns] = Axes(scores);
  std::string out = absl::StrFormat("%-10s", "category");
  for (int64_t length : columns) absl::StrAppendFormat(&out, " %8s", LengthName(length));
  out += "\n";
  for (const std::string& category : categories) {
    absl::StrAppendFormat(&out, "%-10s", category);
    for (int64_t length : columns) {
      const v1::CategoryScore* score = FindScore(scores, category, length);
      absl::StrAppendFormat(&out, " %8s",
                            score == nullptr ? "-" : absl::StrFormat("%.2f", score->score()));
    }
    out += "\n";
  }
  out += "\n";
  for (const v1::TaskResult& result : evaluation.results()) {
    absl::StrAppendFormat(&out, "%-10s %-32s %8s  %s, %d examples\n", result.category(),
                          ResultName(result), Score(result), result.primary_metric(),
                          result.num_examples());
  }
  return out;
}

std::string FormatComparison(const v1::Evaluation& a, const v1::Evaluation& b) {
  const Matched matched = Match(a, b);
  const std::vector<v1::CategoryScore> sa = CategoryScores(matched.a);
  const std::vector<v1::CategoryScore> sb = CategoryScores(matched.b);
  const auto [categories, columns] = Axes(sa);
  std::string out = absl::StrFormat("A: %s\nB: %s\n\n", a.checkpoint_path(), b.checkpoint_path());
  absl::StrAppendFormat(&out, "%-10s %-6s %8s %8s %8s\n", "category", "length", "A", "B", "B - A");
  for (const std::string& category : categories) {
    for (int64_t length : columns) {
      const v1::CategoryScore* x = FindScore(sa, category, length);
      const v1::CategoryScore* y = FindScore(sb, category, length);
      if (x == nullptr || y == nullptr) continue;
      absl::StrAppendFormat(&out, "%-10s %-6s %8.2f %8.2f %+8.2f\n", category, LengthName(length),
                            x->score(), y->score(), y->score() - x->score());
    }
  }
  if (!matched.a.empty()) out += "\n";
  for (size_t i = 0; i < matched.a.size(); ++i) {
    const auto x = matched.a[i].metrics().find(matched.a[i].primary_metric());
    const auto y = matched.b[i].metrics().find(matched.b[i].primary_metric());
    if (x == matched.a[i].metrics().end() || y == matched.b[i].metrics().end()) continue;
    absl::StrAppendFormat(&out, "%-10s %-32s %8.2f %8.2f %+8.2f  %s\n", matched.a[i].category(),
                          ResultName(matched.a[i]), x->second, y->second, y->second - x->second,
                          matched.a[i].primary_metric());
  }
  for (const std::string& line : matched.unmatched) absl::StrAppend(&out, line, "\n");
  return out;
}

std::vector<Regression> FindRegressions(const v1::Evaluation& baseline,
                                        const v1::Evaluation& current, double max_drop) {
  const Matched matched = Match(baseline, current);
  const std::vector<v1::CategoryScore> before = CategoryScores(matched.a);
  const std::vector<v1::CategoryScore> after = CategoryScores(matched.b);
  std::vector<Regression> regressions;
  for (const v1::CategoryScore& b : before) {
    if (b.input_length() == 0) continue;  // each length on its own
    const v1::CategoryScore* a = FindScore(after, b.category(), b.input_length());
    if (a != nullptr && b.score() - a->score() > max_drop) {
      regressions.push_back({b.category(), b.input_length(), b.score(), a->score()});
    }
  }
  return regressions;
}

std::string EvaluationJson(const v1::Evaluation& evaluation) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  // Cannot fail for a message of known type.
  (void)google::protobuf::util::MessageToJsonString(evaluation, &json, options);
  return json;
}

absl::Status WriteEvaluationFile(const v1::Evaluation& evaluation, const std::string& path) {
  return WriteFileAtomically(path, EvaluationJson(evaluation));
}

absl::StatusOr<v1::Evaluation> ReadEvaluationFile(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string json, ReadFile(path));
  v1::Evaluation evaluation;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &evaluation, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an evaluation file: ", status.ToString()));
  }
  return evaluation;
}

}  // namespace prolong::evaluator
