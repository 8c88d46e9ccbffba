// A task's examples: generated from the seed (JSON KV, RULER) or read from HELMET's files (see
// internal/loaders.h for every layout). Nothing is downloaded.
//
//   ASSIGN_OR_RETURN(TaskConfig config, ResolveTask("kilt_nq", 32768));
//   LoadOptions options;
//   options.data_dir = "/data/helmet";  // HELMET's data/ directory
//   ASSIGN_OR_RETURN(TaskData task, LoadTask(config, options, tokenizer));
//
// Where HELMET reads a Hugging Face dataset (ICL, NarrativeQA, InfiniteBench, Multi-LexSum),
// the same records exported as JSONL are read from these paths under the data directory:
//   icl/trec/{train,test}.jsonl                 CogComp/trec
//   icl/banking77/{train,test}.jsonl            PolyAI/banking77
//   icl/clinc_oos_plus/{train,validation}.jsonl clinc_oos, "plus"
//   icl/nlu_evaluation_data/train.jsonl         xingkunliuxtracta/nlu_evaluation_data
//   narrativeqa/{test,train}.jsonl              narrativeqa
//   infbench/longbook_{qa,choice,sum}_eng.jsonl xinrongzhang2022/infinitebench
//   multi_lexsum/{validation,train}.jsonl       allenai/multi_lexsum, v20230518
// RULER's essay haystack (MV) is RULER's json/PaulGrahamEssays.json, at ruler/ by default.
#ifndef PROLONG_EVALUATOR_TASKS_LOAD_TASK_H_
#define PROLONG_EVALUATOR_TASKS_LOAD_TASK_H_

#include "absl/status/statusor.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "evaluator/tasks/task_data.h"
#include "evaluator/tasks/task_registry.h"

namespace prolong::evaluator::tasks {

// The task's examples in HELMET's order with its templates. `tokenizer` is the model's: RULER
// sizes its haystacks in it, and it counts the length filter and the pre-truncation of long
// documents unless options.reference_tokenizer is set. NOT_FOUND names a missing file;
// INVALID_ARGUMENT names a malformed record as FILE:LINE when strict (otherwise such records
// are skipped and counted in the report); FAILED_PRECONDITION when the files cannot supply
// what the task needs (too few demos, a length no haystack fits).
absl::StatusOr<TaskData> LoadTask(const TaskConfig& config, const LoadOptions& options,
                                  const tokenizer::Tokenizer& tokenizer);

}  // namespace prolong::evaluator::tasks

#endif  // PROLONG_EVALUATOR_TASKS_LOAD_TASK_H_
