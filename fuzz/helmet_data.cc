// A HELMET data file as the evaluator's task loader reads it (load_task.h): the first byte picks
// the task (every task read from files, and RULER's essay haystack), the second the file's
// layout (.jsonl, or .json with a "data" list), strictness, the input length and the demos and
// examples asked for; the rest is the file, which serves as the test and the demo file (PopQA
// takes its demos from its test file too). Whatever the bytes, loading either fails naming the
// file (or, FAILED_PRECONDITION, saying what the task lacks), or gives at most the examples
// asked for (RAG and re-rank: of the questions asked for), each an object with its "context" and
// "answer" and only valid UTF-8 in its strings (examples end up in HELMET's JSON output files,
// which neither Python nor we write otherwise), a report whose problems (one per skipped
// record, the first 20) each name the file, nothing skipped when strict, and examples that make
// prompts as prompt.h promises: within the input length minus the generation, or refused as not
// fitting.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "evaluator/tasks/load_task.h"
#include "evaluator/tasks/prompt.h"
#include "evaluator/tasks/task_registry.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"
#include "fuzz/utf8.h"

namespace {

using prolong::evaluator::tasks::BuildPrompt;
using prolong::evaluator::tasks::LoadOptions;
using prolong::evaluator::tasks::LoadReport;
using prolong::evaluator::tasks::LoadTask;
using prolong::evaluator::tasks::Prompt;
using prolong::evaluator::tasks::Record;
using prolong::evaluator::tasks::ResolveTask;
using prolong::evaluator::tasks::TaskConfig;
using prolong::evaluator::tasks::TaskData;
using prolong::evaluator::tasks::TaskKind;

constexpr const char* kTasks[] = {
    "kilt_nq",          "kilt_hotpotqa", "kilt_popqa",      "msmarco_rerank_psg",
    "icl_trec_coarse",  "icl_trec_fine", "icl_banking77",   "icl_clinic150",
    "icl_nlu",          "narrativeqa",   "infbench_qa_eng", "infbench_choice_eng",
    "infbench_sum_eng", "multi_lexsum",  "ruler_niah_mv",
};
constexpr int64_t kLengths[] = {2048, 3000, 4096, 8192};

const prolong::tokenizer::Tokenizer& Tokenizer() {
  static const auto* const tokenizer =
      prolong::evaluator::tasks::internal::Llama3TestTokenizer().release();
  return *tokenizer;
}

// Whether every string in `value`, keys included, is valid UTF-8.
bool AllUtf8(const Record& value) {
  if (value.is_string()) return prolong::fuzz::IsValidUtf8(value.get_ref<const std::string&>());
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (!prolong::fuzz::IsValidUtf8(key) || !AllUtf8(item)) return false;
    }
  }
  if (value.is_array()) {
    for (const auto& item : value) {
      if (!AllUtf8(item)) return false;
    }
  }
  return true;
}

std::string Show(const Record& value) {
  return value.dump(-1, ' ', true, Record::error_handler_t::replace);
}

void CheckPrompt(const TaskData& task, const Record& example) {
  const absl::StatusOr<Prompt> prompt = BuildPrompt(task, example, Tokenizer(), {});
  if (!prompt.ok()) {
    FUZZ_CHECK(prompt.status().code() == absl::StatusCode::kFailedPrecondition,
               prompt.status().ToString());
    return;
  }
  FUZZ_CHECK(static_cast<int64_t>(prompt->input_ids.size()) <=
                 task.config.input_length - task.config.generation_max_length,
             absl::StrCat(task.config.name, ": ", prompt->input_ids.size(), " tokens"));
  FUZZ_CHECK(!prompt->record.contains("context"), task.config.name);
  FUZZ_CHECK(AllUtf8(prompt->record), Show(prompt->record));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  const uint8_t settings = data[1];
  const absl::StatusOr<TaskConfig> resolved =
      ResolveTask(kTasks[data[0] % std::size(kTasks)], kLengths[(settings >> 2) & 3]);
  FUZZ_CHECK(resolved.ok(), resolved.status().ToString());
  TaskConfig config = *resolved;
  // As an operator's EvalTask.shots may; and HELMET's minimum document lengths (64K tokens and
  // more) would leave out every document a fuzzer writes.
  if ((settings & 0x30) != 0x30) config.shots = (settings >> 4) & 3;
  config.min_context_tokens = std::min<int64_t>(config.min_context_tokens, 8);

  const std::string path =
      prolong::fuzz::WriteScratchFile((settings & 1) != 0 ? "data.json" : "data.jsonl", text);
  LoadOptions options;
  options.data_dir = prolong::fuzz::ScratchDir();
  options.strict = (settings & 2) != 0;
  options.max_samples = 1 + (settings >> 6);
  options.test_file = path;
  options.demo_file = path;
  options.essay_file = path;

  const absl::StatusOr<TaskData> task = LoadTask(config, options, Tokenizer());
  if (!task.ok()) {
    // FAILED_PRECONDITION may be the task's (a length no haystack fits) rather than the file's.
    FUZZ_CHECK(task.status().code() == absl::StatusCode::kFailedPrecondition
                   ? !task.status().message().empty()
                   : absl::StrContains(task.status().message(), path),
               task.status().ToString());
    return 0;
  }
  // RAG and re-rank keep every record of a sampled question, as HELMET does, so a file that
  // repeats a question gives more.
  if (config.kind != TaskKind::kRag && config.kind != TaskKind::kRerank) {
    FUZZ_CHECK(task->examples.size() <= static_cast<size_t>(options.max_samples), config.name);
  }
  const LoadReport& report = task->report;
  FUZZ_CHECK(report.records_read >= 0 && report.filtered_out >= 0, config.name);
  FUZZ_CHECK(!options.strict || report.records_skipped == 0, config.name);
  FUZZ_CHECK(
      report.problems.size() == std::min<size_t>(report.records_skipped, 20),
      absl::StrCat(report.problems.size(), " problems, ", report.records_skipped, " skipped"));
  for (const std::string& problem : report.problems) {
    FUZZ_CHECK(absl::StartsWith(problem, path), problem);
  }
  for (const Record& example : task->examples) {
    FUZZ_CHECK(example.is_object() && example.contains("context") && example.contains("answer"),
               Show(example));
    FUZZ_CHECK(AllUtf8(example), Show(example));
    CheckPrompt(*task, example);
  }
  return 0;
}
