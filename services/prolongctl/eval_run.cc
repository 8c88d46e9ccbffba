#include "services/prolongctl/eval_run.h"

#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/install.h"
#include "common/status_macros.h"
#include "datamixer/tokenizer/load.h"
#include "evaluator/diagnostics/position_loss.h"
#include "evaluator/report/evaluation_report.h"
#include "evaluator/results/result_store.h"
#include "evaluator/runner/evaluation_runner.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace prolong::ctl {
namespace {

struct RunFlags {
  std::string checkpoint;
  std::string tokenizer;
  std::string preset;
  std::vector<std::string> tasks;
  std::vector<int64_t> lengths;
  std::string data_dir;
  int samples = 0;
  int batch = 8;
  int64_t prefill_chunk = 4096;
  std::string out_dir;
  std::string results_dir;
  std::string device = "auto";
  uint64_t seed = 42;
  std::string truncation = "end";
  bool allow_extrapolation = false;
  bool strict = false;
  bool json = false;
  std::string baseline;
  double max_drop = 0;
};

int Fail(const absl::Status& status) {
  std::cerr << "prolongctl eval run: " << status.message() << std::endl;
  return 1;
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s / 60 % 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

// One line: on a terminal rewritten in place, elsewhere printed when a task ends or every
// tenth of the work.
void ShowProgress(const evaluator::Progress& p, const v1::TaskResult* finished) {
  static const bool terminal = isatty(STDERR_FILENO);
  static int64_t last_tenth = -1;
  const double rate = p.seconds > 0 ? p.tokens_generated / p.seconds : 0;
  const int64_t left = p.examples_total - p.examples_done;
  const double per_example = p.examples_done > 0 ? p.seconds / p.examples_done : 0;
  std::string line =
      absl::StrFormat("[%s @%d] %d/%d examples, %.0f tokens/s, %s elapsed, ETA %s", p.task,
                      p.input_length, p.examples_done, p.examples_total, rate, Duration(p.seconds),
                      per_example > 0 ? Duration(per_example * left) : "?");
  if (finished != nullptr) {
    const auto metric = finished->metrics().find(finished->primary_metric());
    if (metric != finished->metrics().end()) {
      absl::StrAppendFormat(&line, "; %s @%d: %s %.2f", finished->task(), finished->input_length(),
                            finished->primary_metric(), metric->second);
    }
  }
  const int64_t tenth = p.examples_total > 0 ? 10 * p.examples_done / p.examples_total : 0;
  if (terminal) {
    std::cerr << "\r\033[K" << line << (finished != nullptr ? "\n" : "") << std::flush;
  } else if (finished != nullptr || tenth != last_tenth) {
    std::cerr << line << std::endl;
  }
  last_tenth = tenth;
}

int RunEval(const RunFlags& flags) {
  v1::EvaluationSpec spec;
  spec.set_seed(flags.seed);
  for (const std::string& name : flags.tasks) {
    v1::EvalTask* task = spec.add_tasks();
    task->set_name(name);
    for (int64_t length : flags.lengths) task->add_input_lengths(length);
    task->set_num_examples(flags.samples);
    task->set_shots(-1);
  }
  absl::StatusOr<v1::Evaluation> baseline;
  if (!flags.baseline.empty()) {
    baseline = evaluator::ReadEvaluationFile(flags.baseline);
    if (!baseline.ok()) return Fail(baseline.status());
  }
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer =
      tokenizer::LoadTokenizer(flags.tokenizer, flags.preset);
  if (!tokenizer.ok()) return Fail(Annotate(tokenizer.status(), "--tokenizer"));
  const std::string results_dir =
      flags.results_dir.empty() ? ProlongHome() + "/eval-results" : flags.results_dir;
  std::error_code error;
  std::filesystem::create_directories(results_dir, error);
  absl::StatusOr<std::unique_ptr<evaluator::results::ResultStore>> store =
      evaluator::results::ResultStore::Open(results_dir);
  if (!store.ok()) return Fail(Annotate(store.status(), "--results"));

  evaluator::RunnerOptions options;
  options.device = flags.device;
  options.data_dir = flags.data_dir;
  options.out_dir = flags.out_dir;
  options.batch = flags.batch;
  options.prefill_chunk = flags.prefill_chunk;
  options.strict = flags.strict;
  options.allow_extrapolation = flags.allow_extrapolation;
  options.truncation = flags.truncation == "middle" ? evaluator::tasks::Truncation::kContextMiddle
                                                    : evaluator::tasks::Truncation::kContextEnd;
  std::cerr << "loading " << flags.checkpoint << std::endl;
  absl::StatusOr<std::unique_ptr<evaluator::EvaluationRunner>> runner =
      evaluator::EvaluationRunner::Create(flags.checkpoint, *std::move(tokenizer), store->get(),
                                          options);
  if (!runner.ok()) return Fail(runner.status());
  if (absl::Status checked = (*runner)->CheckSpec(spec); !checked.ok()) return Fail(checked);

  v1::Evaluation evaluation;
  evaluation.set_checkpoint_path(flags.checkpoint);
  evaluation.set_model_fingerprint((*runner)->model_fingerprint());
  *evaluation.mutable_spec() = spec;
  *evaluation.mutable_create_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  absl::StatusOr<evaluator::EvaluationResults> results = (*runner)->Run(spec, ShowProgress);
  if (!results.ok()) return Fail(results.status());
  evaluation.set_state(v1::EVALUATION_STATE_SUCCEEDED);
  *evaluation.mutable_end_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  for (const v1::TaskResult& result : results->results) *evaluation.add_results() = result;
  for (const v1::CategoryScore& score : results->category_scores) {
    *evaluation.add_category_scores() = score;
  }
  if (!flags.out_dir.empty()) {
    const std::string path = (std::filesystem::path(flags.out_dir) / "evaluation.json").string();
    if (absl::Status written = evaluator::WriteEvaluationFile(evaluation, path); !written.ok()) {
      return Fail(written);
    }
    std::cerr << "wrote " << path << " and HELMET's output files beside it" << std::endl;
  }
  if (flags.json) {
    std::cout << evaluator::EvaluationJson(evaluation) << std::flush;
  } else {
    std::cout << evaluator::FormatScores(evaluation) << std::flush;
  }

  if (!flags.baseline.empty()) {
    const std::vector<evaluator::Regression> regressions =
        evaluator::FindRegressions(*baseline, evaluation, flags.max_drop);
    for (const evaluator::Regression& r : regressions) {
      std::cerr << absl::StrFormat(
                       "prolongctl eval run: %s at %d tokens fell %.2f points (%.2f -> %.2f), "
                       "more than --max-drop %.2f",
                       r.category, r.input_length, r.baseline - r.current, r.baseline, r.current,
                       flags.max_drop)
                << std::endl;
    }
    if (!regressions.empty()) return 3;
    std::cerr << "no category fell more than " << flags.max_drop << " points below "
              << flags.baseline << std::endl;
  }
  return 0;
}

struct PositionLossFlags {
  std::string checkpoint;
  std::string store;
  evaluator::diagnostics::PositionLossOptions options;
  std::string device = "auto";
  bool json = false;
};

int RunPositionLoss(const PositionLossFlags& flags) {
  absl::StatusOr<evaluator::diagnostics::PositionLoss> measured =
      evaluator::diagnostics::MeasureCheckpointPositionLoss(flags.checkpoint, flags.store,
                                                            flags.options, flags.device);
  if (!measured.ok()) {
    std::cerr << "prolongctl eval position-loss: " << measured.status().message() << std::endl;
    return 1;
  }
  if (flags.json) {
    nlohmann::ordered_json out;
    out["checkpoint"] = flags.checkpoint;
    out["domain"] = flags.options.domain;
    out["documents"] = measured->documents;
    out["buckets"] = nlohmann::ordered_json::array();
    for (const auto& bucket : measured->buckets) {
      out["buckets"].push_back({{"begin", bucket.begin},
                                {"end", bucket.end},
                                {"tokens", bucket.tokens},
                                {"mean_loss", bucket.mean_loss}});
    }
    std::cout << out.dump(2) << std::endl;
    return 0;
  }
  std::cout << absl::StrFormat("%s on %d documents of '%s': mean next-token loss by position\n",
                               flags.checkpoint, measured->documents, flags.options.domain);
  std::cout << absl::StrFormat("%-16s %10s %10s\n", "positions", "tokens", "loss");
  for (const auto& bucket : measured->buckets) {
    std::cout << absl::StrFormat(
        "%-16s %10d %10s\n", absl::StrCat(bucket.begin, "-", bucket.end), bucket.tokens,
        bucket.tokens > 0 ? absl::StrFormat("%.4f", bucket.mean_loss) : std::string("-"));
  }
  return 0;
}

}  // namespace

void AddEvalPositionLossCommand(CLI::App& eval, int* exit_code) {
  auto flags = std::make_shared<PositionLossFlags>();
  flags->options.max_length = 0;  // the model's
  CLI::App* command = eval.add_subcommand(
      "position-loss",
      "A checkpoint's mean next-token loss by position bucket over a store domain's documents "
      "(a diagnostic: what a long-context stage changes, never a ranking score)");
  command->add_option("--checkpoint", flags->checkpoint, "Model directory or training checkpoint")
      ->required();
  command->add_option("--store", flags->store, "A datamixer store")->required();
  command->add_option("--domain", flags->options.domain, "Its domain to read")->required();
  command
      ->add_option("--documents", flags->options.max_documents,
                   "The domain's first documents read (key order)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command
      ->add_option("--max-length", flags->options.max_length,
                   "Tokens read per document (0: the model's maximum length)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--bucket", flags->options.bucket_tokens, "Positions per bucket")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--chunk", flags->options.chunk_tokens, "Tokens per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_option("--device", flags->device, "cpu, cuda or auto")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  command->add_flag("--json", flags->json, "Print JSON");
  command->callback([flags, exit_code] { *exit_code = RunPositionLoss(*flags); });
}

void AddEvalRunCommand(CLI::App& eval, int* exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run = eval.add_subcommand(
      "run", "Score a checkpoint on HELMET's long-context tasks (in this process)");
  run->add_option("--checkpoint", flags->checkpoint,
                  "A Hugging Face model directory, a training checkpoint, or a checkpoint "
                  "directory (its newest)")
      ->required();
  run->add_option("--tokenizer", flags->tokenizer, "The model's tokenizer file")->required();
  run->add_option("--preset", flags->preset, "Tokenizer preset for a bare rank file")
      ->check(CLI::IsMember({"", "llama3", "cl100k_base"}));
  run->add_option("--tasks", flags->tasks, "Tasks, comma-separated (HELMET's names, e.g. json_kv)")
      ->required()
      ->delimiter(',');
  run->add_option("--lengths", flags->lengths, "Input lengths in tokens, comma-separated")
      ->required()
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  run->add_option("--data", flags->data_dir, "HELMET's data/ directory (for the file-based tasks)");
  run->add_option("--samples", flags->samples, "Examples per task and length (0: HELMET's)")
      ->check(CLI::NonNegativeNumber);
  run->add_option("--batch", flags->batch, "Requests generated together")
      ->check(CLI::PositiveNumber);
  run->add_option("--prefill-chunk", flags->prefill_chunk, "Prompt tokens per prefill pass")
      ->check(CLI::PositiveNumber);
  run->add_option("--out", flags->out_dir,
                  "Write HELMET's output files and evaluation.json into this directory");
  run->add_option("--results", flags->results_dir,
                  "The result store (resumes from it); default $PROLONG_HOME/eval-results");
  run->add_option("--device", flags->device, "cpu, cuda or auto")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  run->add_option("--seed", flags->seed, "HELMET's seed");
  run->add_option("--truncation", flags->truncation,
                  "Where an over-long context loses tokens: end (HELMET's) or middle")
      ->check(CLI::IsMember({"end", "middle"}));
  run->add_flag("--allow-extrapolation", flags->allow_extrapolation,
                "Allow input lengths beyond the model's max_position_embeddings");
  run->add_flag("--strict", flags->strict, "Stop at a malformed data line");
  run->add_flag("--json", flags->json, "Print the evaluation as JSON instead of a table");
  run->add_option("--baseline", flags->baseline,
                  "An evaluation.json to gate against (with --max-drop)");
  run->add_option("--max-drop", flags->max_drop,
                  "Exit 3 when a category at a length falls more than this many points below "
                  "--baseline")
      ->check(CLI::NonNegativeNumber);
  run->callback([flags, exit_code] { *exit_code = RunEval(*flags); });
}

}  // namespace prolong::ctl
