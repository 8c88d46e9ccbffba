#include "evaluator/runner/evaluation_runner.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "datamixer/tokenizer/utf8.h"
#include "evaluator/generate/generator.h"
#include "evaluator/generate/inference_model.h"
#include "evaluator/metrics/dataset.h"
#include "evaluator/metrics/helmet_output.h"
#include "evaluator/report/category_scores.h"
#include "evaluator/tasks/load_task.h"
#include "evaluator/tasks/task_registry.h"
#include "torch/torch.h"

namespace prolong::evaluator {
namespace {

using Json = nlohmann::ordered_json;

// What the generated ids read as: undecodable ids (reserved ones a model may still emit) are
// skipped, and ill-formed UTF-8 is replaced, as Hugging Face's decode does.
std::string DecodeText(const tokenizer::Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  std::vector<uint32_t> valid;
  for (int64_t id : ids) {
    if (id >= 0 && tokenizer.Decode({static_cast<uint32_t>(id)}).ok()) {
      valid.push_back(static_cast<uint32_t>(id));
    }
  }
  absl::StatusOr<std::string> text = tokenizer.Decode(valid);
  return tokenizer::ReplaceInvalidUtf8(text.ok() ? *text : "");
}

// A hash of everything that decides a task's outputs besides the model: the prompts' ids, the
// generation settings, the answer prefix and the records scored against.
std::string ConfigHash(const std::string& dataset, const std::vector<tasks::Prompt>& prompts) {
  Sha256 hasher;
  hasher.Update(absl::StrCat("greedy-v1\n", dataset, "\n"));
  for (const tasks::Prompt& prompt : prompts) {
    hasher.Update(prompt.input_ids.data(), prompt.input_ids.size() * sizeof(uint32_t));
    hasher.Update(absl::StrCat(
        "\n", prompt.generation.max_new_tokens, "\n",
        absl::StrJoin(prompt.generation.stop_strings, "\x1f"), "\n", prompt.output_prefix, "\n",
        prompt.record.dump(-1, ' ', false, Json::error_handler_t::replace), "\n"));
  }
  return absl::BytesToHexString(hasher.Finish()).substr(0, 32);
}

// The record HELMET writes for one example: the task's fields, then the generation's.
Json ExampleRecord(const tasks::Prompt& prompt, const std::string& text,
                   const generate::Generation& generation) {
  Json record = prompt.record;
  // Without the chat template the model continues "Answer:"; HELMET puts it back before
  // parsing (eval.py).
  record["output"] = prompt.chat_template ? text : prompt.output_prefix + text;
  record["input_len"] = static_cast<int64_t>(prompt.input_ids.size());
  // Hugging Face's generate counts the stop token it emitted.
  record["output_len"] = static_cast<int64_t>(generation.tokens.size()) +
                         (generation.stop_reason == generate::StopReason::kEos ? 1 : 0);
  return record;
}

std::string BaseName(const std::string& path) {
  const std::filesystem::path p(path);
  return p.stem().string();
}

}  // namespace

struct EvaluationRunner::Impl {
  std::string fingerprint;
  std::shared_ptr<model::LlamaForCausalLM> model;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer;
  results::ResultStore* store = nullptr;
  RunnerOptions options;
  std::unique_ptr<generate::Generator> generator;
  int64_t tokens_before_run = 0;  // the generator's count when this Run began

  absl::StatusOr<v1::TaskResult> RunTask(const v1::EvalTask& task, int64_t length, uint64_t seed,
                                         Progress& progress, const absl::Time start,
                                         const ProgressCallback& callback,
                                         const std::atomic<bool>* cancelled);
};

EvaluationRunner::EvaluationRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EvaluationRunner::~EvaluationRunner() = default;

const std::string& EvaluationRunner::model_fingerprint() const { return impl_->fingerprint; }

int64_t EvaluationRunner::model_max_length() const {
  return impl_->model->config().max_position_embeddings;
}

absl::StatusOr<std::unique_ptr<EvaluationRunner>> EvaluationRunner::Create(
    const std::string& checkpoint, std::shared_ptr<const tokenizer::Tokenizer> tokenizer,
    results::ResultStore* store, const RunnerOptions& options) {
  if (tokenizer == nullptr || store == nullptr) {
    return absl::InvalidArgumentError("the runner needs a tokenizer and a result store");
  }
  if (options.batch < 1 || options.prefill_chunk < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch (", options.batch,
                                                   ") and prefill_chunk (", options.prefill_chunk,
                                                   ") must be >= 1"));
  }
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(generate::InferenceModel loaded,
                   generate::LoadInferenceModel(checkpoint, options.device));
  impl->fingerprint = loaded.fingerprint;
  impl->model = std::move(loaded.model);
  const model::LlamaConfig& config = impl->model->config();
  if (static_cast<int64_t>(tokenizer->vocab_size()) > config.vocab_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the tokenizer's vocabulary (", tokenizer->vocab_size(), ") is larger than the model's (",
        config.vocab_size, "): they do not belong together"));
  }
  generate::GeneratorOptions generation;
  generation.prefill_chunk = options.prefill_chunk;
  generation.max_batch = options.batch;
  generation.allow_beyond_max_length = options.allow_extrapolation;
  if (config.eos_token_ids.empty() && tokenizer->eos_id().has_value()) {
    generation.eos_ids = {static_cast<int64_t>(*tokenizer->eos_id())};
  }
  const tokenizer::Tokenizer* decoder = tokenizer.get();
  ASSIGN_OR_RETURN(impl->generator,
                   generate::Generator::Create(impl->model, generation,
                                               [decoder](const std::vector<int64_t>& ids) {
                                                 return DecodeText(*decoder, ids);
                                               }));
  impl->tokenizer = std::move(tokenizer);
  impl->store = store;
  impl->options = options;
  return std::unique_ptr<EvaluationRunner>(new EvaluationRunner(std::move(impl)));
}

absl::Status EvaluationRunner::CheckSpec(const v1::EvaluationSpec& spec) const {
  if (spec.tasks().empty()) return absl::InvalidArgumentError("spec.tasks is empty");
  for (int i = 0; i < spec.tasks_size(); ++i) {
    const v1::EvalTask& task = spec.tasks(i);
    const std::string field = absl::StrCat("spec.tasks[", i, "] (", task.name(), ")");
    if (task.input_lengths().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": input_lengths is empty"));
    }
    for (int64_t length : task.input_lengths()) {
      absl::Status resolved = tasks::ResolveTask(task.name(), length).status();
      if (!resolved.ok()) return Annotate(resolved, field);
      if (length > model_max_length() && !impl_->options.allow_extrapolation) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ": input length ", length, " is beyond the model's maximum ",
                         model_max_length(), " (allow extrapolation explicitly to go there)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EvaluationResults> EvaluationRunner::Run(const v1::EvaluationSpec& spec,
                                                        const ProgressCallback& callback,
                                                        const std::atomic<bool>* cancelled) {
  RETURN_IF_ERROR(CheckSpec(spec));
  Progress progress;
  for (const v1::EvalTask& task : spec.tasks()) {
    for (int64_t length : task.input_lengths()) {
      ASSIGN_OR_RETURN(const tasks::TaskConfig config, tasks::ResolveTask(task.name(), length));
      progress.examples_total +=
          task.num_examples() > 0 ? task.num_examples() : config.max_test_samples;
    }
  }
  // HELMET's default seed.
  const uint64_t seed = spec.seed() != 0 ? spec.seed() : 42;
  const absl::Time start = absl::Now();
  impl_->tokens_before_run = impl_->generator->stats().decode_tokens;
  EvaluationResults results;
  for (const v1::EvalTask& task : spec.tasks()) {
    for (int64_t length : task.input_lengths()) {
      ASSIGN_OR_RETURN(v1::TaskResult result,
                       impl_->RunTask(task, length, seed, progress, start, callback, cancelled));
      results.results.push_back(std::move(result));
    }
  }
  results.category_scores = CategoryScores(results.results);
  return results;
}

absl::StatusOr<v1::TaskResult> EvaluationRunner::Impl::RunTask(
    const v1::EvalTask& task, int64_t length, uint64_t seed, Progress& progress,
    const absl::Time start, const ProgressCallback& callback, const std::atomic<bool>* cancelled) {
  const std::string where = absl::StrCat(task.name(), " at ", length, " tokens");
  ASSIGN_OR_RETURN(tasks::TaskConfig config, tasks::ResolveTask(task.name(), length));
  if (task.shots() >= 0) config.shots = task.shots();
  tasks::LoadOptions load;
  load.data_dir = options.data_dir;
  load.seed = seed;
  load.strict = options.strict;
  if (task.num_examples() > 0) load.max_samples = task.num_examples();
  absl::StatusOr<tasks::TaskData> data = tasks::LoadTask(config, load, *tokenizer);
  if (!data.ok()) return Annotate(data.status(), where);
  if (data->report.records_skipped > 0) {
    PROLONG_LOG(WARNING) << where << ": " << data->report.records_skipped
                         << " malformed records skipped (--strict stops at the first): "
                         << absl::StrJoin(data->report.problems, "; ");
  }

  tasks::PromptOptions prompt_options;
  prompt_options.max_length = length;
  prompt_options.model_max_length = model->config().max_position_embeddings;
  prompt_options.allow_extrapolation = options.allow_extrapolation;
  prompt_options.truncation = options.truncation;
  if (task.chat_template() != v1::CHAT_TEMPLATE_UNSPECIFIED) {
    prompt_options.use_chat_template = task.chat_template() == v1::CHAT_TEMPLATE_ON;
  }
  std::vector<tasks::Prompt> prompts;
  for (size_t i = 0; i < data->examples.size(); ++i) {
    absl::StatusOr<tasks::Prompt> prompt =
        tasks::BuildPrompt(*data, data->examples[i], *tokenizer, prompt_options);
    if (!prompt.ok()) return Annotate(prompt.status(), absl::StrCat(where, ": example ", i));
    prompts.push_back(*std::move(prompt));
  }
  const int64_t expected = task.num_examples() > 0 ? task.num_examples() : config.max_test_samples;
  progress.examples_total += static_cast<int64_t>(prompts.size()) - expected;
  progress.task = task.name();
  progress.input_length = length;

  const results::ResultKey key{fingerprint, task.name(), length,
                               ConfigHash(config.dataset, prompts)};
  using Records = std::map<int64_t, std::string>;  // stored examples by index
  ASSIGN_OR_RETURN(Records stored, store->Examples(key));
  std::vector<size_t> pending;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (stored.count(static_cast<int64_t>(i)) == 0) pending.push_back(i);
  }
  progress.examples_done += static_cast<int64_t>(prompts.size() - pending.size());
  auto report = [&](const v1::TaskResult* finished) {
    progress.tokens_generated = generator->stats().decode_tokens - tokens_before_run;
    progress.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (callback) callback(progress, finished);
  };
  report(nullptr);

  for (size_t begin = 0; begin < pending.size(); begin += static_cast<size_t>(options.batch)) {
    if (cancelled != nullptr && cancelled->load()) {
      return absl::CancelledError(absl::StrCat("cancelled during ", where, "; ",
                                               progress.examples_done, " examples are kept"));
    }
    const size_t end = std::min(pending.size(), begin + static_cast<size_t>(options.batch));
    std::vector<generate::GenerationRequest> requests;
    for (size_t j = begin; j < end; ++j) {
      const tasks::Prompt& prompt = prompts[pending[j]];
      generate::GenerationRequest request;
      request.prompt.assign(prompt.input_ids.begin(), prompt.input_ids.end());
      request.max_new_tokens = prompt.generation.max_new_tokens;
      request.stop_strings = prompt.generation.stop_strings;
      requests.push_back(std::move(request));
    }
    absl::Status kept;
    RETURN_IF_ERROR(
        generator
            ->Generate(requests,
                       [&](size_t r, const generate::Generation& generation) {
                         const size_t index = pending[begin + r];
                         const std::string text = DecodeText(*tokenizer, generation.tokens);
                         const std::string record =
                             ExampleRecord(prompts[index], text, generation)
                                 .dump(-1, ' ', false, Json::error_handler_t::replace);
                         if (kept.ok()) {
                           kept = store->PutExample(key, static_cast<int64_t>(index), record);
                         }
                         stored[static_cast<int64_t>(index)] = record;
                         ++progress.examples_done;
                         report(nullptr);
                       })
            .status());
    RETURN_IF_ERROR(kept);
  }

  // Every example is in: HELMET's scoring over all of them, in order.
  std::vector<Json> outputs;
  for (const auto& [index, record] : stored) {
    if (index >= static_cast<int64_t>(prompts.size())) continue;
    Json parsed = Json::parse(record, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return absl::DataLossError(
          absl::StrCat(where, ": the stored record of example ", index, " is not JSON"));
    }
    outputs.push_back(std::move(parsed));
  }
  ASSIGN_OR_RETURN(const metrics::DatasetSpec dataset, metrics::LookupDataset(config.dataset));
  absl::StatusOr<metrics::HelmetOutput> scored = metrics::ScoreOutputs(dataset, std::move(outputs));
  if (!scored.ok()) return Annotate(scored.status(), where);
  scored->dataset = config.dataset;

  v1::TaskResult result;
  result.set_task(task.name());
  result.set_category(std::string(metrics::CategoryName(dataset.category)));
  result.set_input_length(length);
  result.set_num_examples(static_cast<int32_t>(prompts.size()));
  for (const auto& [name, value] : scored->averaged_metrics)
    (*result.mutable_metrics())[name] = value;
  result.set_primary_metric(dataset.reported_metric);
  result.set_config_hash(key.config_hash);
  result.set_dataset(config.dataset);

  Json summary = Json::object();
  summary["dataset"] = config.dataset;
  summary["category"] = result.category();
  summary["primary_metric"] = result.primary_metric();
  summary["num_examples"] = result.num_examples();
  for (const auto& [name, value] : scored->averaged_metrics)
    summary["averaged_metrics"][name] = value;
  RETURN_IF_ERROR(store->PutSummary(key, summary.dump()));

  if (!options.out_dir.empty()) {
    metrics::OutputNameSettings name;
    name.dataset = config.dataset;
    name.test_name = BaseName(config.test_file);
    name.input_max_length = static_cast<int>(length);
    name.max_test_samples = static_cast<int>(prompts.size());
    name.shots = config.shots;
    name.generation_max_length = config.generation_max_length;
    name.use_chat_template = prompt_options.use_chat_template.value_or(config.use_chat_template);
    name.seed = static_cast<int>(seed);
    std::error_code error;
    std::filesystem::create_directories(options.out_dir, error);
    if (error) {
      return absl::FailedPreconditionError(absl::StrCat(options.out_dir, ": ", error.message()));
    }
    RETURN_IF_ERROR(metrics::WriteHelmetOutput(
        *scored,
        (std::filesystem::path(options.out_dir) / metrics::OutputFileName(name)).string()));
  }
  report(&result);
  return result;
}

}  // namespace prolong::evaluator
