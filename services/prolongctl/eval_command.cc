#include "services/prolongctl/eval_command.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "evaluator/metrics/helmet_output.h"
#include "evaluator/report/evaluation_report.h"
#include "nlohmann/json.hpp"
#include "services/prolongctl/eval_run.h"

namespace prolong::ctl {
namespace {

struct RescoreFlags {
  std::vector<std::string> files;
  bool json = false;
};

void PrintError(const absl::Status& status) {
  // One line per file, whatever the message holds.
  std::cerr << "prolongctl eval rescore: " << absl::StrReplaceAll(status.message(), {{"\n", " "}})
            << std::endl;
}

void PrintTable(const std::string& file, const evaluator::metrics::RescoreResult& result) {
  const evaluator::metrics::DatasetSpec& dataset = result.dataset;
  std::cout << file << "\n";
  std::cout << absl::StrFormat("  dataset %s (%s), %d examples; HELMET reports %s", dataset.name,
                               evaluator::metrics::CategoryName(dataset.category),
                               result.output.data.size(), dataset.primary_metric);
  if (dataset.judged) {
    std::cout << " (a GPT-4o judge's score, which only HELMET's judge scripts add;"
              << " rescored here: " << dataset.reported_metric << ")";
  } else if (evaluator::metrics::FindMetric(result.output.averaged_metrics,
                                            dataset.primary_metric) == nullptr) {
    // E.g. NDCG@10 for a re-rank file with fewer than 10 candidates.
    std::cout << " (not in this file)";
  }
  std::cout << "\n";
  std::cout << absl::StrFormat("  %-24s %12s %12s\n", "metric", "rescored", "stored");
  bool any_differs = false;
  for (const auto& [name, value] : result.output.averaged_metrics) {
    const double* stored = evaluator::metrics::FindMetric(result.stored_averages, name);
    const std::string stored_text = stored == nullptr ? "-" : absl::StrFormat("%.2f", *stored);
    // Python writes floats that read back exactly: any difference is a real one.
    const bool differs = stored != nullptr && *stored != value;
    any_differs |= differs;
    std::cout << absl::StrFormat("  %-24s %12.2f %12s%s\n", name, value, stored_text,
                                 differs ? "  *" : "");
  }
  // Stored metrics that rescoring does not compute, such as a judge's score.
  for (const auto& [name, value] : result.stored_averages) {
    if (evaluator::metrics::FindMetric(result.output.averaged_metrics, name) != nullptr) continue;
    std::cout << absl::StrFormat("  %-24s %12s %12.2f\n", name, "-", value);
  }
  if (any_differs) std::cout << "  * differs from the value stored in the file\n";
}

nlohmann::ordered_json ToJson(const std::string& file,
                              const evaluator::metrics::RescoreResult& result) {
  nlohmann::ordered_json entry;
  entry["file"] = file;
  entry["dataset"] = result.dataset.name;
  entry["category"] = std::string(evaluator::metrics::CategoryName(result.dataset.category));
  entry["primary_metric"] = result.dataset.primary_metric;
  entry["reported_metric"] = result.dataset.reported_metric;
  entry["examples"] = result.output.data.size();
  entry["averaged_metrics"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : result.output.averaged_metrics) {
    entry["averaged_metrics"][name] = value;
  }
  entry["stored_averaged_metrics"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : result.stored_averages) {
    entry["stored_averaged_metrics"][name] = value;
  }
  return entry;
}

int RunRescore(const RescoreFlags& flags) {
  int exit_code = 0;
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  bool first = true;
  for (const std::string& file : flags.files) {
    absl::StatusOr<evaluator::metrics::RescoreResult> result = evaluator::metrics::Rescore(file);
    if (!result.ok()) {
      PrintError(result.status());
      exit_code = 1;
      continue;
    }
    if (flags.json) {
      all.push_back(ToJson(file, *result));
      continue;
    }
    if (!first) std::cout << "\n";
    first = false;
    PrintTable(file, *result);
  }
  if (flags.json) std::cout << all.dump(2) << std::endl;
  std::cout << std::flush;
  return exit_code;
}

// An evaluation file, or a directory `eval run --out` wrote (its evaluation.json).
absl::StatusOr<v1::Evaluation> ReadEvaluation(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return evaluator::ReadEvaluationFile(path + "/evaluation.json");
  }
  return evaluator::ReadEvaluationFile(path);
}

int RunCompare(const std::string& a, const std::string& b) {
  absl::StatusOr<v1::Evaluation> first = ReadEvaluation(a);
  absl::StatusOr<v1::Evaluation> second = ReadEvaluation(b);
  for (const absl::StatusOr<v1::Evaluation>* read : {&first, &second}) {
    if (!read->ok()) {
      std::cerr << "prolongctl eval compare: " << read->status().message() << std::endl;
      return 1;
    }
  }
  std::cout << evaluator::FormatComparison(*first, *second) << std::flush;
  return 0;
}

}  // namespace

void AddEvalCommand(CLI::App& app, int* exit_code) {
  CLI::App* eval = app.add_subcommand("eval", "Score evaluations as HELMET does");
  eval->require_subcommand(1);

  auto flags = std::make_shared<RescoreFlags>();
  CLI::App* rescore = eval->add_subcommand(
      "rescore",
      "Recompute the metrics of HELMET output files (ours or HELMET's) from their outputs");
  rescore->add_option("files", flags->files, "Output files ({\"data\": [...], ...} JSON)")
      ->required()
      ->expected(1, -1);
  rescore->add_flag("--json", flags->json, "Print JSON");
  rescore->callback([flags, exit_code] { *exit_code = RunRescore(*flags); });

  AddEvalRunCommand(*eval, exit_code);
  AddEvalPositionLossCommand(*eval, exit_code);

  auto compared = std::make_shared<std::vector<std::string>>();
  CLI::App* compare = eval->add_subcommand(
      "compare",
      "Two evaluations side by side (evaluation.json files, or the --out directories of eval "
      "run), over the results both hold with the same prompts and settings");
  compare->add_option("evaluations", *compared, "A and B")->required()->expected(2);
  compare->callback(
      [compared, exit_code] { *exit_code = RunCompare((*compared)[0], (*compared)[1]); });
}

}  // namespace prolong::ctl
