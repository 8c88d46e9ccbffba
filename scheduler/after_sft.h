// ProLong's evaluation protocol (EvaluationPolicy.after_sft) as the scheduler applies it: which
// checkpoints of a run are evaluated raw, which get a side job that fine-tunes them with a short
// SFT before they are evaluated, and what such a side job is. ProLong compares checkpoints after
// the same short SFT because raw scores hide the long-context ability SFT reveals.
//
// A side job is a run of its own (Run.side_job_of names its parent and checkpoint), so it is
// launched, watched, restarted and evaluated as any run is; its end gives the parent one
// AFTER_SFT evaluation of the checkpoint.
//
// Thread-safety: plain functions of their arguments; no LibTorch, no I/O.
#ifndef PROLONG_SCHEDULER_AFTER_SFT_H_
#define PROLONG_SCHEDULER_AFTER_SFT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "prolong/v1/run_spec.pb.h"
#include "prolong/v1/scheduler.pb.h"

namespace prolong::scheduler {

// Whether `selection` picks the run's checkpoint: a stage end (the step its stage's plan ends
// at) or a stage step that is a multiple of every_steps.
bool Selects(const v1::CheckpointSelection& selection, const v1::Run& run,
             const v1::Checkpoint& checkpoint);

// The raw protocol: evaluation.on_checkpoint, for the checkpoints raw_checkpoints selects (all
// when unset).
bool EvaluatesRaw(const v1::Run& run, const v1::Checkpoint& checkpoint);
// The after-SFT protocol: evaluation.after_sft selects the checkpoint.
bool NeedsSideJob(const v1::Run& run, const v1::Checkpoint& checkpoint);

// UNSPECIFIED, as stored before protocols existed, is RAW.
v1::EvaluationProtocol ProtocolOf(const v1::EvaluationSummary& summary);
// Whether the run holds an evaluation (scores or failure) of its checkpoint of `stage` at
// `step` under `protocol`.
bool HasEvaluation(const v1::Run& run, const std::string& stage, int64_t step,
                   v1::EvaluationProtocol protocol);
// The run's checkpoints that need a side job and have no after-SFT evaluation yet.
std::vector<v1::Checkpoint> AwaitingAfterSft(const v1::Run& run);

// Where the side job of a checkpoint writes: <checkpoint.directory>/after-sft/<stage>-step-<N>,
// beside the stages' directories and never inside one.
std::string SideJobDirectory(const v1::RunSpec& spec, const v1::Checkpoint& checkpoint);
// The side job's submission id: one side job per checkpoint, also across scheduler restarts.
std::string SideJobRequestId(const std::string& run_id, const v1::Checkpoint& checkpoint);
// The side job's spec: the policy's stage from the checkpoint, with the run's seed, model
// settings, optimizer, data, fault policy and checkpoint interval (so the same checkpoint, stage
// and seed give the same weights), the policy's resources or the run's, and an evaluation of
// its last checkpoint with the policy's spec or the run's.
v1::RunSpec SideJobSpec(const v1::RunSpec& spec, const v1::Checkpoint& checkpoint);
// What an ended side job gives its parent: its last checkpoint's evaluation as AFTER_SFT for
// the parent's checkpoint, or why there is none.
v1::EvaluationSummary AfterSftSummary(const v1::Run& side_job);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_AFTER_SFT_H_
