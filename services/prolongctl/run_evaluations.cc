#include "services/prolongctl/run_evaluations.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace prolong::ctl {
namespace {

constexpr char kReferenceForm[] = "RUN_ID:STAGE:STEP[:raw|:after-sft]";

// HELMET's order (evaluator/metrics/category.h); categories it does not know follow by name.
constexpr absl::string_view kCategoryOrder[] = {"recall", "rag",  "rerank", "icl",
                                                "longqa", "summ", "ruler",  "cite"};

int CategoryRank(const std::string& category) {
  const auto* found = std::find(std::begin(kCategoryOrder), std::end(kCategoryOrder), category);
  return static_cast<int>(found - std::begin(kCategoryOrder));
}

// Training order: the stage's index in the spec (unknown stages last), then the step.
using CheckpointKey = std::tuple<int, std::string, int64_t>;

CheckpointKey KeyOf(const v1::Run& run, const std::string& stage, int64_t step) {
  int index = run.spec().stages_size();
  for (int k = 0; k < run.spec().stages_size(); ++k) {
    if (run.spec().stages(k).name() == stage) {
      index = k;
      break;
    }
  }
  return {index, stage, step};
}

// Per checkpoint, the newest evaluation of each protocol (the run keeps them newest first).
struct Checkpoint {
  const v1::EvaluationSummary* raw = nullptr;
  const v1::EvaluationSummary* after_sft = nullptr;
};

std::map<CheckpointKey, Checkpoint> CheckpointsOf(const v1::Run& run) {
  std::map<CheckpointKey, Checkpoint> checkpoints;
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    Checkpoint& checkpoint = checkpoints[KeyOf(run, evaluation.stage(), evaluation.step())];
    const v1::EvaluationSummary*& slot =
        IsAfterSft(evaluation) ? checkpoint.after_sft : checkpoint.raw;
    if (slot == nullptr) slot = &evaluation;
  }
  return checkpoints;
}

std::string ProtocolName(v1::EvaluationProtocol protocol) {
  return protocol == v1::EVALUATION_PROTOCOL_AFTER_SFT ? "after SFT" : "raw";
}

std::string Cell(const v1::EvaluationSummary* evaluation, const std::string& category) {
  if (evaluation == nullptr) return "-";
  if (!evaluation->failure().empty()) return "failed";
  const auto score = evaluation->category_scores().find(category);
  if (score == evaluation->category_scores().end()) return "-";
  return absl::StrFormat("%.1f", score->second);
}

// Columns two spaces apart, the first left-aligned and the others right-aligned.
std::string FormatColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const std::vector<std::string>& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const std::vector<std::string>& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      const std::string padding(widths[i] - row[i].size(), ' ');
      line += i == 0 ? row[i] + padding : padding + row[i];
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

}  // namespace

bool IsAfterSft(const v1::EvaluationSummary& evaluation) {
  return evaluation.protocol() == v1::EVALUATION_PROTOCOL_AFTER_SFT;
}

std::string DescribeEvaluation(const v1::EvaluationSummary& evaluation) {
  std::vector<std::string> scores;
  for (const auto& [category, score] : evaluation.category_scores()) {
    scores.push_back(absl::StrFormat("%s %.1f", category, score));
  }
  std::sort(scores.begin(), scores.end());
  return absl::StrCat("evaluation ", evaluation.stage(), " step ", evaluation.step(),
                      IsAfterSft(evaluation) ? " after SFT" : "", ": ",
                      evaluation.failure().empty() ? absl::StrJoin(scores, ", ")
                                                   : "failed: " + evaluation.failure());
}

std::string FormatEvaluationTable(const v1::Run& run) {
  if (run.evaluations().empty()) return "";
  const std::map<CheckpointKey, Checkpoint> checkpoints = CheckpointsOf(run);

  bool any_raw = run.spec().evaluation().on_checkpoint();
  bool any_after_sft = run.spec().evaluation().has_after_sft();
  std::vector<std::string> categories;
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    (IsAfterSft(evaluation) ? any_after_sft : any_raw) = true;
    for (const auto& [category, score] : evaluation.category_scores()) {
      if (std::find(categories.begin(), categories.end(), category) == categories.end()) {
        categories.push_back(category);
      }
    }
  }
  std::sort(categories.begin(), categories.end(), [](const std::string& a, const std::string& b) {
    return std::make_pair(CategoryRank(a), a) < std::make_pair(CategoryRank(b), b);
  });
  // Every evaluation failed: one column per protocol, named by it alone.
  if (categories.empty()) categories.push_back("");
  std::vector<v1::EvaluationProtocol> protocols;
  if (any_raw) protocols.push_back(v1::EVALUATION_PROTOCOL_RAW);
  if (any_after_sft) protocols.push_back(v1::EVALUATION_PROTOCOL_AFTER_SFT);

  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"stage", "step"};
  for (const std::string& category : categories) {
    for (v1::EvaluationProtocol protocol : protocols) {
      header.push_back(category.empty()
                           ? ProtocolName(protocol)
                           : absl::StrCat(category, " (", ProtocolName(protocol), ")"));
    }
  }
  rows.push_back(std::move(header));
  for (const auto& [key, checkpoint] : checkpoints) {
    std::vector<std::string> row = {std::get<1>(key), absl::StrCat(std::get<2>(key))};
    for (const std::string& category : categories) {
      for (v1::EvaluationProtocol protocol : protocols) {
        row.push_back(
            Cell(protocol == v1::EVALUATION_PROTOCOL_RAW ? checkpoint.raw : checkpoint.after_sft,
                 category));
      }
    }
    rows.push_back(std::move(row));
  }
  return FormatColumns(rows);
}

std::string FormatEvaluationLines(const v1::Run& run) {
  std::vector<const v1::EvaluationSummary*> evaluations;
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    evaluations.push_back(&evaluation);
  }
  std::stable_sort(evaluations.begin(), evaluations.end(),
                   [&](const v1::EvaluationSummary* a, const v1::EvaluationSummary* b) {
                     return std::make_pair(KeyOf(run, a->stage(), a->step()), IsAfterSft(*a)) <
                            std::make_pair(KeyOf(run, b->stage(), b->step()), IsAfterSft(*b));
                   });
  std::string out;
  for (const v1::EvaluationSummary* evaluation : evaluations) {
    absl::StrAppend(&out, DescribeEvaluation(*evaluation));
    const std::string& side_job = evaluation->side_job_run_id();
    if (!side_job.empty() && !absl::StrContains(evaluation->failure(), side_job)) {
      absl::StrAppend(&out, " (side job ", side_job, ")");
    }
    out += "\n";
  }
  return out;
}

std::string DescribeSideJob(const v1::Run& run) {
  if (!run.has_side_job_of()) return "";
  return absl::StrCat("side job of ", run.side_job_of().run_id(), ": ",
                      run.side_job_of().checkpoint().stage(), " step ",
                      run.side_job_of().checkpoint().step(), " (after-SFT evaluation)");
}

absl::StatusOr<CheckpointReference> ParseCheckpointReference(absl::string_view text) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() < 3 || parts.size() > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a checkpoint reference ", kReferenceForm));
  }
  CheckpointReference reference;
  reference.run_id = std::string(parts[0]);
  reference.stage = std::string(parts[1]);
  if (reference.run_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" has no run id (", kReferenceForm, ")"));
  }
  if (reference.stage.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" has no stage (", kReferenceForm, ")"));
  }
  if (!absl::SimpleAtoi(parts[2], &reference.step) || reference.step < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "step \"", parts[2], "\" of \"", text, "\" is not a step number (", kReferenceForm, ")"));
  }
  if (parts.size() == 4) {
    if (parts[3] == "raw") {
      reference.protocol = v1::EVALUATION_PROTOCOL_RAW;
    } else if (parts[3] == "after-sft") {
      reference.protocol = v1::EVALUATION_PROTOCOL_AFTER_SFT;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("protocol \"", parts[3], "\" of \"", text, "\" is not raw or after-sft"));
    }
  }
  return reference;
}

std::string DescribeCheckpointReference(const CheckpointReference& reference) {
  return absl::StrCat(
      "run ", reference.run_id, ": ", reference.stage, " step ", reference.step,
      reference.protocol == v1::EVALUATION_PROTOCOL_AFTER_SFT ? " after SFT" : " (raw)");
}

absl::StatusOr<v1::EvaluationSummary> FindEvaluation(const v1::Run& run,
                                                     const CheckpointReference& reference) {
  const bool after_sft = reference.protocol == v1::EVALUATION_PROTOCOL_AFTER_SFT;
  const std::string what = absl::StrCat(after_sft ? "after-SFT" : "raw", " evaluation of ",
                                        reference.stage, " step ", reference.step);
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    if (evaluation.stage() != reference.stage || evaluation.step() != reference.step ||
        IsAfterSft(evaluation) != after_sft) {
      continue;
    }
    if (!evaluation.failure().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", run.run_id(), "'s ", what, " failed: ", evaluation.failure()));
    }
    if (evaluation.evaluation_id().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("run ", run.run_id(), "'s ", what, " has no evaluation id"));
    }
    return evaluation;
  }
  if (run.evaluations().empty()) {
    return absl::NotFoundError(
        absl::StrCat("run ", run.run_id(), " has no ", what, ": it has no evaluations"));
  }
  std::vector<std::string> held;
  for (const auto& [key, checkpoint] : CheckpointsOf(run)) {
    std::vector<std::string> protocols;
    if (checkpoint.raw != nullptr) protocols.push_back("raw");
    if (checkpoint.after_sft != nullptr) protocols.push_back("after-sft");
    held.push_back(absl::StrCat(std::get<1>(key), ":", std::get<2>(key), " (",
                                absl::StrJoin(protocols, ", "), ")"));
  }
  std::string message = absl::StrCat("run ", run.run_id(), " has no ", what,
                                     "; its evaluations: ", absl::StrJoin(held, ", "));
  const auto& stages = run.spec().stages();
  if (!stages.empty() && std::none_of(stages.begin(), stages.end(), [&](const v1::StageSpec& s) {
        return s.name() == reference.stage;
      })) {
    std::vector<std::string> names;
    for (const v1::StageSpec& stage : stages) names.push_back(stage.name());
    absl::StrAppend(&message, " (its stages: ", absl::StrJoin(names, ", "), ")");
  }
  return absl::NotFoundError(message);
}

CompareOperand ClassifyCompareOperand(absl::string_view operand, bool exists) {
  if (exists || absl::StrContains(operand, '/') || absl::EndsWith(operand, ".json")) {
    return CompareOperand::kFile;
  }
  if (absl::StrContains(operand, ':')) return CompareOperand::kCheckpointReference;
  return CompareOperand::kEvaluationId;
}

}  // namespace prolong::ctl
