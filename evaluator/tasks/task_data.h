// A task's examples as HELMET's loaders leave them (data.py, commit 4526dfb): one JSON object
// per example holding the template fields ("context", "question", "demos", ...) and what the
// metrics read ("answer", "qrel", ...), plus the task's prompt templates.
#ifndef PROLONG_EVALUATOR_TASKS_TASK_DATA_H_
#define PROLONG_EVALUATOR_TASKS_TASK_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "evaluator/tasks/task_registry.h"
#include "nlohmann/json.hpp"

namespace prolong::tokenizer {
class Tokenizer;
}  // namespace prolong::tokenizer

namespace prolong::evaluator::tasks {

// Insertion-ordered, like the Python dicts HELMET writes.
using Record = nlohmann::ordered_json;

// HELMET's templates. `prompt` is what a model reads without the chat template (user, a
// separator, then system, which the model continues); with the chat template the model reads
// `user` as the user's turn. All are Python format strings over an example's fields.
struct PromptTemplates {
  std::string user;
  std::string system;
  std::string prompt;
};

// What loading met on the way.
struct LoadReport {
  int64_t records_read = 0;     // Records parsed from the test file.
  int64_t records_skipped = 0;  // Malformed records left out (never when strict).
  int64_t filtered_out = 0;     // Well-formed records HELMET's filters leave out (length, ...).
  std::vector<std::string> problems;  // "FILE:LINE: what is wrong", the first 20.
};

struct LoadOptions {
  // HELMET's data/ directory: the paths in TaskConfig are relative to it.
  std::string data_dir;
  uint64_t seed = 42;  // HELMET's --seed.
  // How many examples to keep; < 0: the task's max_test_samples; 0: all of them.
  int max_samples = -1;
  // Stop at the first malformed record instead of skipping it.
  bool strict = false;
  // Override TaskConfig's files (absolute, or relative to data_dir).
  std::string test_file;
  std::string demo_file;
  // Counts the tokens of HELMET's length filter and pre-truncation of long documents (HELMET
  // uses Llama 2's tokenizer, so that every model sees the same text). Null: the model's.
  const tokenizer::Tokenizer* reference_tokenizer = nullptr;
  // RULER's essay haystack (MV): RULER's json/PaulGrahamEssays.json layout, {"text": "..."}.
  // Empty: <data_dir>/ruler/PaulGrahamEssays.json.
  std::string essay_file;
};

struct TaskData {
  TaskConfig config;
  PromptTemplates templates;
  std::vector<Record> examples;
  LoadReport report;
};

}  // namespace prolong::evaluator::tasks

#endif  // PROLONG_EVALUATOR_TASKS_TASK_DATA_H_
