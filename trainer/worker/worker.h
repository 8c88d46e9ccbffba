// One rank of a training gang, from start to the end of its stage's plan:
//   1. joins the gang over Gloo at a TCP store (which rank 0 may host, --host-rendezvous);
//   2. asks the datamixer for the stage's plan (every rank must get the same plan id);
//   3. builds the model (fresh from a config and the seed, or the weights of a Hugging Face
//      model directory or of an earlier stage's checkpoint) and the Trainer, whose schedule is
//      the stage's over the plan's steps;
//   4. resumes from the newest valid checkpoint in the checkpoint directory, if any: model,
//      AdamW state, RNG and step; refused if the checkpoint's data cursor names another plan
//      or data fingerprint. With none, a stage started from an earlier stage's checkpoint
//      takes that stage's AdamW state and step count and restarts the schedule;
//   5. streams its slice of every step from there, trains, logs one line a step (rank 0) and
//      sets its Prometheus metrics;
//   6. checkpoints every N steps and at the end: rank 0 writes, and every rank waits for the
//      write, so no rank runs ahead of the newest checkpoint.
// A stop request (SIGTERM) is agreed on by all ranks after a step, which is then checkpointed.
// A non-finite loss fails the run before anything is saved, so the last good checkpoint stays
// the newest.
//
// Thread-safety: Run is called once, from one thread; RequestStop from any thread.
#ifndef PROLONG_TRAINER_WORKER_WORKER_H_
#define PROLONG_TRAINER_WORKER_WORKER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prolong/v1/scheduler.pb.h"
#include "prometheus/registry.h"
#include "trainer/worker/worker_options.h"

namespace prolong::worker {

enum class Outcome {
  kFinished,  // the plan's last step is trained and checkpointed
  kStopped,   // stopped on request after a step, which is checkpointed
};

// Who is told of the training as it goes (the scheduler, in scheduler mode). Called on the
// thread running Run.
struct WorkerObserver {
  // Every rank, after every step: the step's figures for the whole gang.
  std::function<void(const v1::StepMetrics&)> on_step;
  // Rank 0, once every rank knows the checkpoint is complete on disk.
  std::function<void(const v1::Checkpoint&)> on_checkpoint;
};

class Worker {
 public:
  // Checks the options and reads the stage and the model's config (CheckRank, CheckJob), and
  // with --host-rendezvous starts serving the gang's store; nothing is contacted yet.
  // Registers the metrics in `registry`, which must outlive the worker.
  static absl::StatusOr<std::unique_ptr<Worker>> Create(const WorkerOptions& options,
                                                        prometheus::Registry& registry);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs the rank to the end of the plan. Errors are one line naming what failed: a rank that
  // did not join (DEADLINE_EXCEEDED), an unreachable datamixer (UNAVAILABLE), a checkpoint of
  // other data (FAILED_PRECONDITION), a non-finite loss (INTERNAL), a peer that died.
  absl::StatusOr<Outcome> Run();

  // Before Run.
  void SetObserver(WorkerObserver observer);

  // Asks the gang to stop after the current step. Returns true if Run is training (it will
  // checkpoint and return kStopped); false before training has started, when the caller may
  // simply exit, since nothing would be lost.
  bool RequestStop();

  // host:port of the gang's store (the hosted one's real port with --host-rendezvous).
  const std::string& rendezvous_address() const;

 private:
  struct State;
  explicit Worker(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace prolong::worker

#endif  // PROLONG_TRAINER_WORKER_WORKER_H_
