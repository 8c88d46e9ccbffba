#include "evaluator/tasks/load_task.h"

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "evaluator/tasks/internal/json_kv.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/records.h"
#include "evaluator/tasks/internal/ruler.h"
#include "evaluator/tasks/internal/templates.h"

namespace prolong::evaluator::tasks {
namespace {

using internal::DataPath;

// RULER's essay file: {"text": "..."}.
absl::StatusOr<std::string> ReadEssay(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object() || !json.contains("text") ||
      !json["text"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": want RULER's essay layout, {\"text\": \"...\"}"));
  }
  return json["text"].get<std::string>();
}

}  // namespace

absl::StatusOr<TaskData> LoadTask(const TaskConfig& config, const LoadOptions& options,
                                  const tokenizer::Tokenizer& tokenizer) {
  TaskData task;
  task.config = config;
  task.templates = internal::TemplatesFor(config);
  const int max_samples = options.max_samples < 0 ? config.max_test_samples : options.max_samples;

  switch (config.kind) {
    case TaskKind::kJsonKv: {
      internal::JsonKvOptions generate;
      generate.num_pairs = config.num_items;
      generate.num_samples = max_samples > 0 ? max_samples : config.max_test_samples;
      generate.shots = config.shots;
      generate.seed = options.seed;
      ASSIGN_OR_RETURN(task.examples, internal::GenerateJsonKv(generate));
      return task;
    }
    case TaskKind::kRulerNiah: {
      internal::RulerOptions generate;
      ASSIGN_OR_RETURN(generate.spec, internal::RulerSpecFor(config.name));
      generate.max_seq_length = config.input_length;
      generate.num_samples = max_samples > 0 ? max_samples : config.max_test_samples;
      generate.seed = options.seed;
      generate.templates = task.templates;
      generate.tokenizer = &tokenizer;
      if (generate.spec.haystack == internal::RulerNiahSpec::Haystack::kEssay) {
        const std::string path = options.essay_file.empty()
                                     ? DataPath(options.data_dir, "ruler/PaulGrahamEssays.json")
                                     : DataPath(options.data_dir, options.essay_file);
        ASSIGN_OR_RETURN(generate.essay, ReadEssay(path));
      }
      ASSIGN_OR_RETURN(task.examples, internal::GenerateRulerNiah(generate));
      return task;
    }
    default:
      break;
  }

  internal::LoaderContext context;
  context.config = &task.config;
  context.test_path =
      DataPath(options.data_dir, options.test_file.empty() ? config.test_file : options.test_file);
  context.demo_path =
      DataPath(options.data_dir, options.demo_file.empty() ? config.demo_file : options.demo_file);
  context.seed = options.seed;
  context.max_samples = max_samples;
  context.shots = config.shots;
  context.strict = options.strict;
  context.reference_tokenizer =
      options.reference_tokenizer != nullptr ? options.reference_tokenizer : &tokenizer;

  absl::StatusOr<std::vector<Record>> examples;
  switch (config.kind) {
    case TaskKind::kRag:
      examples = internal::LoadRag(context, task.report);
      break;
    case TaskKind::kRerank:
      examples = internal::LoadRerank(context, task.report);
      break;
    case TaskKind::kIcl:
      examples = internal::LoadIcl(context, task.report);
      break;
    case TaskKind::kNarrativeQa:
      examples = internal::LoadNarrativeQa(context, task.report);
      break;
    case TaskKind::kInfBenchQa:
    case TaskKind::kInfBenchChoice:
    case TaskKind::kInfBenchSum:
      examples = internal::LoadInfBench(context, task.report);
      break;
    case TaskKind::kMultiLexSum:
      examples = internal::LoadMultiLexSum(context, task.report);
      break;
    default:
      return absl::InternalError(absl::StrCat("task '", config.name, "' has no loader"));
  }
  if (!examples.ok()) return Annotate(examples.status(), config.name);
  task.examples = *std::move(examples);
  return task;
}

}  // namespace prolong::evaluator::tasks
