// How prolongctl shows a run's evaluations under both protocols (raw checkpoints, and
// checkpoints after the policy's short SFT, as ProLong evaluates), and how an operator names one
// of them on `eval compare`'s command line.
//
// Thread-safety: plain functions of their arguments; no I/O.
#ifndef PROLONG_SERVICES_PROLONGCTL_RUN_EVALUATIONS_H_
#define PROLONG_SERVICES_PROLONGCTL_RUN_EVALUATIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prolong/v1/scheduler.pb.h"

namespace prolong::ctl {

// UNSPECIFIED (stored before protocols existed) is RAW.
bool IsAfterSft(const v1::EvaluationSummary& evaluation);

// One evaluation on a line: "evaluation long step 4: recall 12.5, rag 3.0" (raw),
// "evaluation long step 4 after SFT: recall 40.0" (after SFT), or "...: failed: REASON".
std::string DescribeEvaluation(const v1::EvaluationSummary& evaluation);

// A run's evaluations side by side, one row per checkpoint (stage, stage step) in training
// order and, per category, a column for each protocol the run has or asks for:
//   stage  step  recall (raw)  recall (after SFT)
//   short     3          12.5                   -
//   short     6        failed                40.0
// "-" where that protocol has no score, "failed" where it failed. Empty when the run has no
// evaluations.
std::string FormatEvaluationTable(const v1::Run& run);

// One line per evaluation in the table's order, raw before after SFT: DescribeEvaluation's
// (which says why a failed one failed), with " (side job RUN)" where a side job fine-tuned the
// checkpoint.
std::string FormatEvaluationLines(const v1::Run& run);

// "side job of RUN: short step 6 (after-SFT evaluation)"; empty for a run that is not one.
std::string DescribeSideJob(const v1::Run& run);

// A run's evaluated checkpoint, on the command line RUN_ID:STAGE:STEP[:raw|:after-sft].
struct CheckpointReference {
  std::string run_id;
  std::string stage;
  int64_t step = 0;  // within the stage
  v1::EvaluationProtocol protocol = v1::EVALUATION_PROTOCOL_RAW;
};

// INVALID_ARGUMENT naming the part that is wrong (the default protocol is raw).
absl::StatusOr<CheckpointReference> ParseCheckpointReference(absl::string_view text);

// "run R: short step 6 after SFT" or "run R: short step 6 (raw)".
std::string DescribeCheckpointReference(const CheckpointReference& reference);

// The run's evaluation that `reference` names (the newest, were there several). NOT_FOUND
// listing the evaluations the run has when it has none of that checkpoint and protocol;
// FAILED_PRECONDITION with the reason when it failed or has no evaluation id.
absl::StatusOr<v1::EvaluationSummary> FindEvaluation(const v1::Run& run,
                                                     const CheckpointReference& reference);

// What an operand of `eval compare` is: a path (evaluation.json or an `eval run --out`
// directory) when it exists, contains '/' or ends in ".json"; otherwise a checkpoint reference
// when it contains ':'; otherwise an evaluation id of the evaluator service.
enum class CompareOperand { kFile, kCheckpointReference, kEvaluationId };
CompareOperand ClassifyCompareOperand(absl::string_view operand, bool exists);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_RUN_EVALUATIONS_H_
