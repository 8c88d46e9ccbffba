// The scheduler's checks of a RunSpec before it accepts a run: every field an operator wrote,
// the stages against the run's resources, and where the spec's paths may point. The checks
// need no data and no accelerator (the datamixer still checks the mixture against its store
// when it plans a stage). No LibTorch here.
//
// Thread-safety: plain functions of their arguments.
#ifndef PROLONG_SCHEDULER_RUN_SPEC_CHECK_H_
#define PROLONG_SCHEDULER_RUN_SPEC_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "prolong/v1/run_spec.pb.h"

namespace prolong::scheduler {

// One thing wrong with a spec.
struct SpecProblem {
  // The field's path, e.g. "stages[1].mixture[0].proportion"; a repeated field as a whole is
  // named without an index ("stages[1].mixture").
  std::string field;
  // What the field must be and what it is.
  std::string message;
};

// Where paths in a spec (model.init_checkpoint, model.tokenizer.path, checkpoint.directory,
// resources.local.work_dir) may point. Each root is an absolute path; a path is under a root
// when the root's components are its first components (/data/runs-evil is not under
// /data/runs). Empty: any absolute path.
struct PathRoots {
  std::vector<std::string> roots;
};

// Every problem of `spec`, in the order of the fields in run_spec.proto; empty when the spec
// is valid.
std::vector<SpecProblem> CheckRunSpec(const v1::RunSpec& spec, const PathRoots& roots);

// OK when `problems` is empty, otherwise INVALID_ARGUMENT listing every problem as
// "field: message", joined by "; ".
absl::Status RunSpecStatus(const std::vector<SpecProblem>& problems);

// A stage's parallel layout.
struct Layout {
  int dp = 1;
  int cp = 1;
  int micro_batch_sequences = 1;
};

// The layout stage `stage_index` runs with: each non-zero field of its StageSpec.layout, else
// Resources' field, else 1. Values are returned as written, so a negative one (which
// CheckRunSpec reports) comes back negative. Crashes unless 0 <= stage_index < stages_size().
Layout StageLayoutOf(const v1::RunSpec& spec, int stage_index);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_RUN_SPEC_CHECK_H_
