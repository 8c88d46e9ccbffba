// Follows the post_process functions of HELMET's data.py (commit 4526dfb):
// default_post_process, load_json_kv's, load_multi_lexsum's, load_icl's, load_ruler's,
// load_infbench's choice_post_process and load_msmarco_rerank's.
#include "evaluator/metrics/score_example.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "evaluator/metrics/answer.h"
#include "evaluator/metrics/internal/python_text.h"
#include "evaluator/metrics/retrieval.h"
#include "evaluator/metrics/rouge.h"

namespace prolong::evaluator::metrics {
namespace {

// {k: max(v, other[k])} over the first dict's keys, as the post_process functions merge the
// raw output's metrics with the parsed output's.
MetricValues MaxPerMetric(MetricValues raw, const MetricValues& parsed) {
  for (auto& [name, value] : raw) {
    if (const double* other = FindMetric(parsed, name); other != nullptr && *other > value) {
      value = *other;
    }
  }
  return raw;
}

void Erase(MetricValues& values, absl::string_view name) {
  values.erase(std::remove_if(values.begin(), values.end(),
                              [&](const auto& entry) { return entry.first == name; }),
               values.end());
}

absl::StatusOr<std::string> StringField(const Json& example, absl::string_view field) {
  auto it = example.find(std::string(field));
  if (it == example.end()) {
    return absl::InvalidArgumentError(absl::StrCat("'", field, "' is missing"));
  }
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", field, "' must be a string, got ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::vector<std::string>> Golds(const Json& example) {
  auto it = example.find("answer");
  if (it == example.end()) return absl::InvalidArgumentError("'answer' is missing");
  return FlattenGolds(*it);
}

// Scores the raw output and the output parsed after `prefix`, keeping each metric's maximum.
absl::StatusOr<ExampleScore> ScoreParsed(const Json& example, const std::string& output,
                                         absl::string_view prefix) {
  ASSIGN_OR_RETURN(const std::vector<std::string> golds, Golds(example));
  const std::string parsed = ParseOutput(output, prefix);
  ExampleScore score;
  score.metrics = MaxPerMetric(CalculateMetrics(output, golds), CalculateMetrics(parsed, golds));
  score.parsed_output = parsed;
  return score;
}

absl::StatusOr<ExampleScore> ScoreIcl(const Json& example, const std::string& output) {
  ASSIGN_OR_RETURN(const std::vector<std::string> golds, Golds(example));
  const std::string parsed = ParseOutput(output, "label:");
  return ExampleScore{CalculateMetrics(parsed, golds), parsed};
}

absl::StatusOr<ExampleScore> ScoreChoice(const Json& example, const std::string& output) {
  ASSIGN_OR_RETURN(const std::vector<std::string> golds, Golds(example));
  const Json& answer = example["answer"];
  if (!answer.is_array() || answer.size() < 2 || !answer[1].is_string()) {
    return absl::InvalidArgumentError(
        "'answer' must be [letter, \"letter. option text\"] for multiple choice");
  }
  MetricValues raw = CalculateMetrics(output, golds);
  Erase(raw, "substring_exact_match");
  const std::string parsed = ParseOutput(output);
  MetricValues from_parsed = CalculateMetrics(parsed, golds);
  Erase(from_parsed, "substring_exact_match");
  ExampleScore score;
  score.metrics = MaxPerMetric(std::move(raw), from_parsed);
  // Only "A. option text" found in the raw output counts as a substring match, and it makes
  // the exact match too.
  const bool found = internal::PythonLower(output).find(
                         internal::PythonLower(answer[1].get<std::string>())) != std::string::npos;
  score.metrics.emplace_back("substring_exact_match", found ? 1 : 0);
  if (found) {
    for (auto& [name, value] : score.metrics) {
      if (name == "exact_match") value = 1;
    }
  }
  score.parsed_output = parsed;
  return score;
}

absl::StatusOr<ExampleScore> ScoreRulerRecall(const Json& example, const std::string& output) {
  auto it = example.find("answer");
  if (it == example.end()) return absl::InvalidArgumentError("'answer' is missing");
  std::vector<std::string> golds;
  if (it->is_string()) {
    // Python iterates a string answer character by character.
    for (char32_t c : internal::DecodeUtf8(it->get<std::string>())) {
      golds.push_back(internal::EncodeUtf8(std::u32string(1, c)));
    }
  } else if (it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("answer[", i, "]: expected a string, got ", (*it)[i].type_name()));
      }
      golds.push_back((*it)[i].get<std::string>());
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'answer' must be a list of strings, got ", it->type_name()));
  }
  if (golds.empty()) return absl::InvalidArgumentError("'answer' is empty");
  return ExampleScore{{{"ruler_recall", RulerRecall(output, golds)}}, output};
}

absl::StatusOr<int> Label(const Json& value, size_t index) {
  int label = 0;
  if (value.is_number_integer()) return value.get<int>();
  if (value.is_string() && absl::SimpleAtoi(value.get<std::string>(), &label)) return label;
  return absl::InvalidArgumentError(
      absl::StrCat("qrel[", index, "][1]: expected an integer label, got ", value.dump()));
}

absl::StatusOr<ExampleScore> ScoreRerank(const Json& example, const std::string& output,
                                         const ScoreOptions& options) {
  auto it = example.find("qrel");
  if (it == example.end() || !it->is_array()) {
    return absl::InvalidArgumentError("'qrel' must be a list of [doc id, label]");
  }
  // A dict in HELMET: a repeated document keeps its last label.
  std::map<std::string, int> labels;
  std::vector<std::string> order;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& pair = (*it)[i];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("qrel[", i, "]: expected [doc id (string), label], got ", pair.dump()));
    }
    ASSIGN_OR_RETURN(const int label, Label(pair[1], i));
    const std::string doc_id = pair[0].get<std::string>();
    if (labels.emplace(doc_id, label).second) {
      order.push_back(doc_id);
    } else {
      labels[doc_id] = label;
    }
  }
  std::vector<Qrel> qrels;
  for (const std::string& doc_id : order) qrels.push_back({doc_id, labels[doc_id]});

  const Ranking ranking = ParseRankings(output);
  const int candidates = options.rerank_candidates.value_or(static_cast<int>(it->size()));
  ASSIGN_OR_RETURN(MetricValues metrics,
                   RetrievalMetrics(ranking, qrels, HelmetCutoffs(candidates)));
  metrics.emplace_back("num_preds", static_cast<double>(ranking.size()));
  ExampleScore score;
  score.metrics = std::move(metrics);
  score.parsed_output = Json::object();
  for (const auto& [doc_id, rank_score] : ranking) score.parsed_output[doc_id] = rank_score;
  return score;
}

}  // namespace

MetricValues CalculateMetrics(absl::string_view prediction, const std::vector<std::string>& golds) {
  const double exact = MaxOverGolds(
      [](absl::string_view p, absl::string_view g) { return ExactMatch(p, g) ? 1.0 : 0.0; },
      prediction, golds);
  const double f1 = MaxOverGolds(TokenF1, prediction, golds);
  const double substring =
      MaxOverGolds([](absl::string_view p,
                      absl::string_view g) { return SubstringExactMatch(p, g) ? 1.0 : 0.0; },
                   prediction, golds);
  RougeScore best_l;
  RougeScore best_lsum;
  for (size_t i = 0; i < golds.size(); ++i) {
    const RougeScore l = RougeL(golds[i], prediction);
    const RougeScore lsum = RougeLsum(golds[i], prediction);
    if (i == 0 || l.fmeasure > best_l.fmeasure) best_l.fmeasure = l.fmeasure;
    if (i == 0 || l.recall > best_l.recall) best_l.recall = l.recall;
    if (i == 0 || lsum.fmeasure > best_lsum.fmeasure) best_lsum.fmeasure = lsum.fmeasure;
    if (i == 0 || lsum.recall > best_lsum.recall) best_lsum.recall = lsum.recall;
  }
  return {
      {"exact_match", exact},
      {"f1", f1},
      {"substring_exact_match", substring},
      {"rougeL_f1", best_l.fmeasure},
      {"rougeL_recall", best_l.recall},
      {"rougeLsum_f1", best_lsum.fmeasure},
      {"rougeLsum_recall", best_lsum.recall},
  };
}

double RulerRecall(absl::string_view output, const std::vector<std::string>& golds) {
  const std::string lowered = internal::PythonLower(output);
  int found = 0;
  for (const std::string& gold : golds) {
    if (lowered.find(internal::PythonLower(gold)) != std::string::npos) ++found;
  }
  return static_cast<double>(found) / golds.size();
}

absl::StatusOr<ExampleScore> ScoreExample(const DatasetSpec& dataset, const Json& example,
                                          const ScoreOptions& options) {
  if (!example.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("an example must be an object, got ", example.type_name()));
  }
  ASSIGN_OR_RETURN(const std::string output, StringField(example, "output"));
  switch (dataset.scoring) {
    case Scoring::kQa:
      return ScoreParsed(example, output, "Answer:");
    case Scoring::kJsonKv:
      return ScoreParsed(example, output, "corresponding value:");
    case Scoring::kSummary:
      return ScoreParsed(example, output, "Summary:");
    case Scoring::kIcl:
      return ScoreIcl(example, output);
    case Scoring::kChoice:
      return ScoreChoice(example, output);
    case Scoring::kRulerRecall:
      return ScoreRulerRecall(example, output);
    case Scoring::kRerank:
      return ScoreRerank(example, output, options);
  }
  return absl::InternalError("unknown scoring");
}

}  // namespace prolong::evaluator::metrics
