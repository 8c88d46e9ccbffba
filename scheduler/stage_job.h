// What a stage of a run becomes for its workers: the trainer's job flags
// (trainer/worker/worker_options.h), the same ones `prolongctl train --local` takes, and the
// files they name. Stage k trains into <checkpoint.directory>/<stage name> and, after the first
// stage, starts from the previous stage's newest checkpoint there (its weights and AdamW state;
// the schedule restarts), as ProLong goes 64K -> 512K -> SFT.
#ifndef PROLONG_SCHEDULER_STAGE_JOB_H_
#define PROLONG_SCHEDULER_STAGE_JOB_H_

#include <string>

#include "absl/status/statusor.h"
#include "prolong/v1/run_spec.pb.h"
#include "trainer/worker/worker_options.h"

namespace prolong::scheduler {

struct StageJobOptions {
  // The run's scratch directory: the stage spec and config.json the flags name go there.
  std::string work_dir;
  // The datamixer when the spec names none.
  std::string datamixer_address;
  // Intra-op threads of each worker when the run is not deterministic; 0: LibTorch's default.
  int threads_per_worker = 0;
};

// The stage as the trainer and the datamixer see it: the scheduler-only layout cleared, so the
// plan is the same whoever launches the stage.
v1::StageSpec TrainerStage(const v1::RunSpec& spec, int stage_index);

// Where stage `stage_index` writes its checkpoints.
std::string StageCheckpointDir(const v1::RunSpec& spec, int stage_index);

// Writes the stage's files into options.work_dir (atomically) and returns the workers' job.
// The spec must have passed CheckRunSpec.
absl::StatusOr<worker::WorkerOptions> PrepareStageJob(const v1::RunSpec& spec, int stage_index,
                                                      const StageJobOptions& options);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_STAGE_JOB_H_
