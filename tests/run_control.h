// What tests of scheduled runs share: `prolongctl run` against a scheduler process, a run's
// fields, its checkpoints as they appear, and its workers' pids from the scheduler's log.
#ifndef PROLONG_TESTS_RUN_CONTROL_H_
#define PROLONG_TESTS_RUN_CONTROL_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "prolong/v1/scheduler.pb.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"

namespace prolong::testing {

// `prolongctl run --scheduler=ADDRESS args...`.
RunResult Ctl(const ServiceProcess& scheduler, std::vector<std::string> args,
              absl::Duration timeout = absl::Seconds(60));

// `prolongctl run submit SPEC flags...`; the run's id (expected to succeed).
std::string Submit(const ServiceProcess& scheduler, const std::string& spec_path,
                   const std::vector<std::string>& flags = {});

// `prolongctl run get --json`'s field, e.g. "state" -> "RUN_STATE_RUNNING"; "" if absent.
std::string RunField(const ServiceProcess& scheduler, const std::string& run_id,
                     const std::string& field);

// Waits until the run's `field` reads `value`.
bool WaitFor(const ServiceProcess& scheduler, const std::string& run_id, const std::string& field,
             const std::string& value, absl::Duration timeout);

// The run, through the Scheduler service.
v1::Run GetRun(const ServiceProcess& scheduler, const std::string& run_id);

// Waits until the stage's checkpoint directory holds a checkpoint of at least `step`.
bool WaitForCheckpoint(const std::string& stage_dir, int64_t step, absl::Duration timeout,
                       absl::Duration poll = absl::Milliseconds(50));

// The step of the newest checkpoint in a stage's directory; 0 if none.
int64_t NewestCheckpointStep(const std::string& stage_dir);

// The pids of the workers of `attempt` (of `run_id`, a regex, else of any run), from the
// scheduler's log of their registrations, in rank order (ranks register in any order).
std::vector<pid_t> WorkerPids(const Subprocess& scheduler, int64_t attempt,
                              const std::string& run_id = R"(\S+)");

bool Alive(pid_t pid);

// Whether every one of `pids` has ended within 10 s.
bool AllGone(const std::vector<pid_t>& pids);

}  // namespace prolong::testing

#endif  // PROLONG_TESTS_RUN_CONTROL_H_
