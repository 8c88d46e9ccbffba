#include "scheduler/after_sft.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace prolong::scheduler {
namespace {

// The steps of the checkpoint's stage, once its plan is known; 0 otherwise.
int64_t StageSteps(const v1::Run& run, const std::string& stage) {
  for (int k = 0; k < run.spec().stages_size() && k < run.stage_plans_size(); ++k) {
    if (run.spec().stages(k).name() == stage) return run.stage_plans(k).steps();
  }
  return 0;
}

}  // namespace

bool Selects(const v1::CheckpointSelection& selection, const v1::Run& run,
             const v1::Checkpoint& checkpoint) {
  if (selection.every_steps() > 0 && checkpoint.step() % selection.every_steps() == 0) return true;
  return selection.stage_ends() && checkpoint.step() > 0 &&
         checkpoint.step() == StageSteps(run, checkpoint.stage());
}

bool EvaluatesRaw(const v1::Run& run, const v1::Checkpoint& checkpoint) {
  const v1::EvaluationPolicy& policy = run.spec().evaluation();
  return policy.on_checkpoint() &&
         (!policy.has_raw_checkpoints() || Selects(policy.raw_checkpoints(), run, checkpoint));
}

bool NeedsSideJob(const v1::Run& run, const v1::Checkpoint& checkpoint) {
  const v1::EvaluationPolicy& policy = run.spec().evaluation();
  return policy.has_after_sft() && Selects(policy.after_sft().checkpoints(), run, checkpoint);
}

v1::EvaluationProtocol ProtocolOf(const v1::EvaluationSummary& summary) {
  return summary.protocol() == v1::EVALUATION_PROTOCOL_UNSPECIFIED ? v1::EVALUATION_PROTOCOL_RAW
                                                                   : summary.protocol();
}

bool HasEvaluation(const v1::Run& run, const std::string& stage, int64_t step,
                   v1::EvaluationProtocol protocol) {
  return std::any_of(run.evaluations().begin(), run.evaluations().end(),
                     [&](const v1::EvaluationSummary& summary) {
                       return summary.stage() == stage && summary.step() == step &&
                              ProtocolOf(summary) == protocol;
                     });
}

std::vector<v1::Checkpoint> AwaitingAfterSft(const v1::Run& run) {
  std::vector<v1::Checkpoint> awaiting;
  for (const v1::Checkpoint& checkpoint : run.checkpoints()) {
    if (NeedsSideJob(run, checkpoint) && !HasEvaluation(run, checkpoint.stage(), checkpoint.step(),
                                                        v1::EVALUATION_PROTOCOL_AFTER_SFT)) {
      awaiting.push_back(checkpoint);
    }
  }
  return awaiting;
}

std::string SideJobDirectory(const v1::RunSpec& spec, const v1::Checkpoint& checkpoint) {
  return absl::StrCat(spec.checkpoint().directory(), "/after-sft/", checkpoint.stage(), "-step-",
                      checkpoint.step());
}

std::string SideJobRequestId(const std::string& run_id, const v1::Checkpoint& checkpoint) {
  return absl::StrCat("after-sft/", run_id, "/", checkpoint.stage(), "/", checkpoint.step());
}

v1::RunSpec SideJobSpec(const v1::RunSpec& spec, const v1::Checkpoint& checkpoint) {
  const v1::AfterSftPolicy& policy = spec.evaluation().after_sft();
  v1::RunSpec side;
  // Run names are at most 63 characters.
  side.set_name(absl::StrCat(spec.name().substr(0, 59), "-sft"));
  *side.mutable_model() = spec.model();
  side.mutable_model()->set_init_checkpoint(checkpoint.path());
  *side.add_stages() = policy.stage();
  *side.mutable_optimizer() = spec.optimizer();
  *side.mutable_data() = spec.data();
  *side.mutable_resources() = policy.has_resources() ? policy.resources() : spec.resources();
  v1::CheckpointPolicy& checkpoints = *side.mutable_checkpoint();
  checkpoints.set_directory(SideJobDirectory(spec, checkpoint));
  checkpoints.set_every_steps(spec.checkpoint().every_steps());  // where a restart resumes
  checkpoints.set_keep_last(spec.checkpoint().keep_last());
  v1::EvaluationPolicy& evaluation = *side.mutable_evaluation();
  evaluation.set_on_checkpoint(true);
  evaluation.set_evaluator_address(spec.evaluation().evaluator_address());
  *evaluation.mutable_spec() = policy.has_spec() ? policy.spec() : spec.evaluation().spec();
  evaluation.mutable_raw_checkpoints()->set_stage_ends(true);
  *side.mutable_fault() = spec.fault();
  side.set_seed(spec.seed());
  side.set_deterministic(spec.deterministic());
  return side;
}

v1::EvaluationSummary AfterSftSummary(const v1::Run& side_job) {
  v1::EvaluationSummary summary;
  summary.set_stage(side_job.side_job_of().checkpoint().stage());
  summary.set_step(side_job.side_job_of().checkpoint().step());
  summary.set_protocol(v1::EVALUATION_PROTOCOL_AFTER_SFT);
  summary.set_side_job_run_id(side_job.run_id());
  // Its only evaluation is of its last checkpoint.
  if (side_job.state() == v1::RUN_STATE_SUCCEEDED && !side_job.evaluations().empty()) {
    const v1::EvaluationSummary& evaluated = side_job.evaluations(0);
    summary.set_evaluation_id(evaluated.evaluation_id());
    *summary.mutable_category_scores() = evaluated.category_scores();
    summary.set_failure(evaluated.failure());
    return summary;
  }
  const std::string state = v1::RunState_Name(side_job.state());
  summary.set_failure(absl::StrCat("side job ", side_job.run_id(), " ended ",
                                   state.substr(std::string("RUN_STATE_").size()),
                                   side_job.message().empty() ? "" : ": " + side_job.message()));
  return summary;
}

}  // namespace prolong::scheduler
