// The file layout follows HELMET's eval.py (run_test): the output JSON and FILE.score.
#include "evaluator/metrics/helmet_output.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "evaluator/metrics/average.h"

namespace prolong::evaluator::metrics {
namespace {

constexpr absl::string_view kOwnFields[] = {"args", "data", "metrics", "averaged_metrics"};

bool IsOwnField(absl::string_view key) {
  for (absl::string_view field : kOwnFields) {
    if (key == field) return true;
  }
  return false;
}

// A per-example metric as HELMET's Python writes it: truth values for the match metrics,
// integers for counts and lengths.
Json MetricJson(absl::string_view name, double value) {
  if (name == "exact_match" || name == "substring_exact_match") return Json(value != 0);
  if ((name == "num_preds" || absl::StrContains(name, "_len")) && value == std::floor(value) &&
      std::fabs(value) < 9e15) {
    return Json(static_cast<int64_t>(value));
  }
  return Json(value);
}

absl::StatusOr<double> Number(const Json& value, absl::string_view where) {
  if (value.is_boolean()) return value.get<bool>() ? 1.0 : 0.0;
  if (value.is_number()) return value.get<double>();
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": expected a number, got ", value.type_name()));
}

absl::StatusOr<MetricValues> ReadValues(const Json& object, absl::string_view field) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", field, "' must be an object, got ", object.type_name()));
  }
  MetricValues values;
  for (const auto& [name, value] : object.items()) {
    ASSIGN_OR_RETURN(const double number, Number(value, absl::StrCat(field, ".", name)));
    values.emplace_back(name, number);
  }
  return values;
}

absl::StatusOr<MetricColumns> ReadColumns(const Json& object) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'metrics' must be an object, got ", object.type_name()));
  }
  MetricColumns columns;
  for (const auto& [name, list] : object.items()) {
    if (!list.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("metrics.", name, ": expected a list"));
    }
    std::vector<double> column;
    for (size_t i = 0; i < list.size(); ++i) {
      ASSIGN_OR_RETURN(const double number,
                       Number(list[i], absl::StrCat("metrics.", name, "[", i, "]")));
      column.push_back(number);
    }
    columns.emplace_back(name, std::move(column));
  }
  return columns;
}

// A token count as HELMET writes one: a whole number from 0 below MetricJson's integer bound.
// Anything larger could make a column's mean infinite, which JSON cannot hold (nlohmann writes
// null), and the rescored file would not read back.
bool IsTokenCount(const Json& value) {
  if (!value.is_number()) return false;
  const double number = value.get<double>();
  return number >= 0 && number < 9e15 && number == std::floor(number);
}

// The column of a per-example length field when every example has it as a token count.
std::optional<std::vector<double>> LengthColumn(const std::vector<Json>& data,
                                                const std::string& field) {
  std::vector<double> column;
  for (const Json& example : data) {
    auto it = example.find(field);
    if (it == example.end() || !IsTokenCount(*it)) return std::nullopt;
    column.push_back(it->get<double>());
  }
  return column;
}

absl::StatusOr<HelmetOutput> ParseOutputFile(const std::string& path, const std::string& text) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& error) {  // parse_error, or out_of_range for 1e400
    // nlohmann's message starts with "[json.exception.parse_error.101] ".
    absl::string_view message = error.what();
    if (const size_t end = message.find("] "); end != absl::string_view::npos) {
      message.remove_prefix(end + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", message));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an object with \"data\", got ", root.type_name()));
  }
  HelmetOutput output;
  auto data = root.find("data");
  if (data == root.end() || !data->is_array()) {
    return absl::InvalidArgumentError("'data' must be a list of examples");
  }
  for (size_t i = 0; i < data->size(); ++i) {
    if (!(*data)[i].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("data[", i, "]: expected an object, got ", (*data)[i].type_name()));
    }
    output.data.push_back((*data)[i]);
  }
  if (auto args = root.find("args"); args != root.end()) {
    if (!args->is_object()) return absl::InvalidArgumentError("'args' must be an object");
    output.args = *args;
    if (auto datasets = args->find("datasets"); datasets != args->end() && datasets->is_string()) {
      output.dataset = datasets->get<std::string>();
    }
  }
  if (output.dataset.empty()) {
    std::optional<std::string> from_name = DatasetFromOutputName(path);
    if (!from_name.has_value()) {
      return absl::InvalidArgumentError(
          "no args.datasets, and the file name does not start with a HELMET dataset name");
    }
    output.dataset = *from_name;
  }
  if (auto metrics = root.find("metrics"); metrics != root.end()) {
    ASSIGN_OR_RETURN(output.metrics, ReadColumns(*metrics));
  }
  if (auto averaged = root.find("averaged_metrics"); averaged != root.end()) {
    ASSIGN_OR_RETURN(output.averaged_metrics, ReadValues(*averaged, "averaged_metrics"));
  }
  for (const auto& [key, value] : root.items()) {
    if (!IsOwnField(key)) output.extra[key] = value;
  }
  return output;
}

}  // namespace

absl::StatusOr<HelmetOutput> ScoreOutputs(const DatasetSpec& dataset, std::vector<Json> data) {
  if (data.empty()) {
    return absl::InvalidArgumentError("data: no examples (HELMET writes no file without any)");
  }
  ScoreOptions options;
  if (dataset.scoring == Scoring::kRerank) {
    // HELMET sets the cutoffs once, from the first example's candidates.
    if (auto qrel = data.front().find("qrel"); qrel != data.front().end() && qrel->is_array()) {
      options.rerank_candidates = static_cast<int>(qrel->size());
    }
  }
  HelmetOutput output;
  output.dataset = dataset.name;
  for (size_t i = 0; i < data.size(); ++i) {
    Json& example = data[i];
    absl::StatusOr<ExampleScore> score = ScoreExample(dataset, example, options);
    if (!score.ok()) return Annotate(score.status(), absl::StrCat("data[", i, "]"));
    example["parsed_output"] = score->parsed_output;
    for (const auto& [name, value] : score->metrics) {
      example[name] = MetricJson(name, value);
      auto column = std::find_if(output.metrics.begin(), output.metrics.end(),
                                 [&name = name](const auto& entry) { return entry.first == name; });
      if (column == output.metrics.end()) {
        output.metrics.emplace_back(name, std::vector<double>());
        column = std::prev(output.metrics.end());
      }
      column->second.push_back(value);
    }
  }
  for (const std::string field : {"input_len", "output_len"}) {
    if (std::optional<std::vector<double>> column = LengthColumn(data, field)) {
      output.metrics.emplace_back(field, *std::move(column));
    }
  }
  output.averaged_metrics = AverageMetrics(output.metrics);
  output.data = std::move(data);
  return output;
}

absl::StatusOr<HelmetOutput> ReadHelmetOutput(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  absl::StatusOr<HelmetOutput> output = ParseOutputFile(path, text);
  if (!output.ok()) return Annotate(output.status(), path);
  return output;
}

absl::Status WriteHelmetOutput(const HelmetOutput& output, const std::string& path) {
  Json root = Json::object();
  root["args"] = output.args.is_object() ? output.args : Json::object();
  root["args"]["datasets"] = output.dataset;
  root["data"] = Json::array();
  for (const Json& example : output.data) root["data"].push_back(example);
  Json metrics = Json::object();
  for (const auto& [name, values] : output.metrics) {
    Json list = Json::array();
    for (double value : values) list.push_back(MetricJson(name, value));
    metrics[name] = std::move(list);
  }
  root["metrics"] = std::move(metrics);
  Json averaged = Json::object();
  for (const auto& [name, value] : output.averaged_metrics) averaged[name] = value;
  root["averaged_metrics"] = averaged;
  for (const auto& [key, value] : output.extra.items()) {
    if (!IsOwnField(key)) root[key] = value;
  }
  RETURN_IF_ERROR(WriteFileAtomically(path, root.dump(4, ' ', /*ensure_ascii=*/true)));
  return WriteFileAtomically(path + ".score", averaged.dump(4, ' ', /*ensure_ascii=*/true));
}

absl::StatusOr<RescoreResult> Rescore(const std::string& path) {
  ASSIGN_OR_RETURN(HelmetOutput stored, ReadHelmetOutput(path));
  absl::StatusOr<DatasetSpec> dataset = LookupDataset(stored.dataset);
  if (!dataset.ok()) return Annotate(dataset.status(), path);
  absl::StatusOr<HelmetOutput> scored = ScoreOutputs(*dataset, std::move(stored.data));
  if (!scored.ok()) return Annotate(scored.status(), path);
  scored->args = std::move(stored.args);
  scored->extra = std::move(stored.extra);
  return RescoreResult{*std::move(dataset), *std::move(scored), std::move(stored.averaged_metrics)};
}

}  // namespace prolong::evaluator::metrics
