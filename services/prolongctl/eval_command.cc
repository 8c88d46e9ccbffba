#include "services/prolongctl/eval_command.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/security.h"
#include "common/status_macros.h"
#include "evaluator/metrics/helmet_output.h"
#include "evaluator/report/evaluation_report.h"
#include "nlohmann/json.hpp"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "services/prolongctl/eval_run.h"
#include "services/prolongctl/run_evaluations.h"

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

struct CompareFlags {
  std::vector<std::string> operands;
  std::string scheduler;
  std::string evaluator;
  ClientSecurityFiles security_files;
};

constexpr absl::Duration kCallTimeout = absl::Seconds(30);

// The services the operands need, connected once.
struct Services {
  const CompareFlags* flags = nullptr;
  ClientSecurity security;
  std::unique_ptr<v1::Scheduler::Stub> scheduler;
  std::unique_ptr<v1::Evaluator::Stub> evaluator;
};

// The service's answer as a status whose message says which service and what was asked;
// UNAVAILABLE for a service that cannot be reached (within the deadline).
absl::Status FromCall(const grpc::Status& status, const std::string& service,
                      const std::string& address, const std::string& asked) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::UnavailableError(
          absl::StrCat(service, " ", address, " unreachable: ", status.error_message()));
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(
          absl::StrCat(service, " ", address, ": ", status.error_message(),
                       "; give --token-file or set PROLONG_TOKEN_FILE"));
    default:
      return absl::Status(
          static_cast<absl::StatusCode>(status.error_code()),
          absl::StrCat(asked, " (", service, " ", address, "): ", status.error_message()));
  }
}

absl::StatusOr<v1::Evaluation> FetchEvaluation(Services& services, const std::string& id) {
  v1::GetEvaluationRequest request;
  request.set_evaluation_id(id);
  grpc::ClientContext context;
  AddCredentials(context, services.security);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::Evaluation evaluation;
  const grpc::Status status = services.evaluator->GetEvaluation(&context, request, &evaluation);
  if (!status.ok()) {
    return FromCall(status, "evaluator", services.flags->evaluator,
                    absl::StrCat("evaluation ", id));
  }
  // A comparison of part of the results would read as a change in the model.
  switch (evaluation.state()) {
    case v1::EVALUATION_STATE_SUCCEEDED:
      return evaluation;
    case v1::EVALUATION_STATE_FAILED:
      return absl::FailedPreconditionError(
          absl::StrCat("evaluation ", id, " failed: ", evaluation.message()));
    default:
      return absl::FailedPreconditionError(absl::StrFormat(
          "evaluation %s is %s (%d/%d examples); compare it once it has succeeded", id,
          absl::AsciiStrToLower(
              absl::StripPrefix(v1::EvaluationState_Name(evaluation.state()), "EVALUATION_STATE_")),
          evaluation.progress().examples_done(), evaluation.progress().examples_total()));
  }
}

absl::StatusOr<v1::Run> FetchRun(Services& services, const std::string& run_id) {
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  grpc::ClientContext context;
  AddCredentials(context, services.security);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::Run run;
  const grpc::Status status = services.scheduler->GetRun(&context, request, &run);
  if (!status.ok()) {
    return FromCall(status, "scheduler", services.flags->scheduler, absl::StrCat("run ", run_id));
  }
  return run;
}

// An operand's evaluation, and what it is when that is not a path (printed above the
// comparison, whose own lines name the checkpoints).
struct Operand {
  v1::Evaluation evaluation;
  std::string described;
};

absl::StatusOr<Operand> ResolveOperand(Services& services, const std::string& operand) {
  std::error_code error;
  switch (ClassifyCompareOperand(operand, std::filesystem::exists(operand, error))) {
    case CompareOperand::kFile: {
      ASSIGN_OR_RETURN(v1::Evaluation evaluation, ReadEvaluation(operand));
      return Operand{std::move(evaluation), ""};
    }
    case CompareOperand::kEvaluationId: {
      if (services.evaluator == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(operand, ": no such file or directory; to compare evaluation ", operand,
                         " of the evaluator service, give --evaluator HOST:PORT"));
      }
      ASSIGN_OR_RETURN(v1::Evaluation evaluation, FetchEvaluation(services, operand));
      return Operand{std::move(evaluation), absl::StrCat("evaluation ", operand)};
    }
    case CompareOperand::kCheckpointReference: {
      ASSIGN_OR_RETURN(const CheckpointReference reference, ParseCheckpointReference(operand));
      if (services.scheduler == nullptr || services.evaluator == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            operand, " names a run's checkpoint (", DescribeCheckpointReference(reference),
            "): give ", services.scheduler == nullptr ? "--scheduler HOST:PORT to find it" : "",
            services.scheduler == nullptr && services.evaluator == nullptr ? " and " : "",
            services.evaluator == nullptr ? "--evaluator HOST:PORT to read its evaluation" : ""));
      }
      ASSIGN_OR_RETURN(const v1::Run run, FetchRun(services, reference.run_id));
      ASSIGN_OR_RETURN(const v1::EvaluationSummary summary, FindEvaluation(run, reference));
      ASSIGN_OR_RETURN(v1::Evaluation evaluation,
                       FetchEvaluation(services, summary.evaluation_id()));
      return Operand{std::move(evaluation), absl::StrCat(DescribeCheckpointReference(reference),
                                                         ", evaluation ", summary.evaluation_id())};
    }
  }
  return absl::InternalError("unreachable");
}

// The operands' evaluations, or the exit code after printing why not (as `command`).
absl::StatusOr<std::vector<Operand>> ResolveOperands(const CompareFlags& flags,
                                                     const std::string& command, int* exit_code) {
  Services services;
  services.flags = &flags;
  if (!flags.scheduler.empty() || !flags.evaluator.empty()) {
    absl::StatusOr<ClientSecurity> security = LoadClientSecurity(flags.security_files);
    if (!security.ok()) {
      std::cerr << "prolongctl " << command << ": " << security.status().message() << std::endl;
      *exit_code = 1;
      return security.status();
    }
    services.security = *std::move(security);
  }
  if (!flags.scheduler.empty()) {
    services.scheduler = v1::Scheduler::NewStub(OpenChannel(flags.scheduler, services.security));
  }
  if (!flags.evaluator.empty()) {
    services.evaluator = v1::Evaluator::NewStub(OpenChannel(flags.evaluator, services.security));
  }
  std::vector<Operand> operands;
  for (const std::string& operand : flags.operands) {
    absl::StatusOr<Operand> resolved = ResolveOperand(services, operand);
    if (!resolved.ok()) {
      std::cerr << "prolongctl " << command << ": " << resolved.status().message() << std::endl;
      *exit_code = resolved.status().code() == absl::StatusCode::kUnavailable ? 2 : 1;
      return resolved.status();
    }
    operands.push_back(*std::move(resolved));
  }
  return operands;
}

int RunShow(const CompareFlags& flags, bool json) {
  int exit_code = 0;
  absl::StatusOr<std::vector<Operand>> operands = ResolveOperands(flags, "eval show", &exit_code);
  if (!operands.ok()) return exit_code;
  const Operand& shown = operands->front();
  if (json) {
    std::cout << evaluator::EvaluationJson(shown.evaluation) << std::endl;
    return 0;
  }
  if (!shown.described.empty()) std::cout << shown.described << "\n";
  std::cout << evaluator::FormatScores(shown.evaluation) << std::flush;
  return 0;
}

int RunCompare(const CompareFlags& flags) {
  int exit_code = 0;
  absl::StatusOr<std::vector<Operand>> resolved =
      ResolveOperands(flags, "eval compare", &exit_code);
  if (!resolved.ok()) return exit_code;
  const std::vector<Operand>& operands = *resolved;
  const char* const names[] = {"A", "B"};
  for (size_t i = 0; i < operands.size(); ++i) {
    if (!operands[i].described.empty()) {
      std::cout << names[i] << " is " << operands[i].described << "\n";
    }
  }
  std::cout << evaluator::FormatComparison(operands[0].evaluation, operands[1].evaluation)
            << std::flush;
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

  auto compare_flags = std::make_shared<CompareFlags>();
  CLI::App* compare = eval->add_subcommand(
      "compare",
      "Two evaluations side by side, over the results both hold with the same prompts and "
      "settings. Each is an evaluation.json file or an `eval run --out` directory; an "
      "evaluation id of the evaluator service (with --evaluator); or a run's evaluated "
      "checkpoint RUN_ID:STAGE:STEP[:raw|:after-sft] (raw by default; with --scheduler and "
      "--evaluator)");
  compare->add_option("evaluations", compare_flags->operands, "A and B")->required()->expected(2);
  compare->add_option("--evaluator", compare_flags->evaluator,
                      "host:port of the evaluator service, for evaluation ids and checkpoints");
  compare->add_option("--scheduler", compare_flags->scheduler,
                      "host:port of the scheduler, for RUN_ID:STAGE:STEP checkpoints");
  AddClientSecurityFlags(*compare, compare_flags->security_files, "", /*with_token=*/true,
                         /*from_environment=*/true);
  compare->callback([compare_flags, exit_code] { *exit_code = RunCompare(*compare_flags); });

  auto show_flags = std::make_shared<CompareFlags>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* show = eval->add_subcommand(
      "show",
      "One evaluation's scores by task and input length: an evaluation.json file or `eval run "
      "--out` directory, an evaluation id (with --evaluator), or a run's evaluated checkpoint "
      "RUN_ID:STAGE:STEP[:raw|:after-sft] (with --scheduler and --evaluator)");
  show->add_option("evaluation", show_flags->operands, "The evaluation")->required()->expected(1);
  show->add_option("--evaluator", show_flags->evaluator,
                   "host:port of the evaluator service, for evaluation ids and checkpoints");
  show->add_option("--scheduler", show_flags->scheduler,
                   "host:port of the scheduler, for RUN_ID:STAGE:STEP checkpoints");
  show->add_flag("--json", *show_json, "Print the evaluation as JSON");
  AddClientSecurityFlags(*show, show_flags->security_files, "", /*with_token=*/true,
                         /*from_environment=*/true);
  show->callback(
      [show_flags, show_json, exit_code] { *exit_code = RunShow(*show_flags, *show_json); });
}

}  // namespace prolong::ctl
