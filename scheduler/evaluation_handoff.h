// Hands every checkpoint a run reports to the evaluator, with the run's evaluation policy, and
// reports the scores when the evaluation ends. The evaluator is idempotent on (checkpoint,
// tokenizer, spec), so handing a checkpoint over again (after a scheduler restart, or an
// evaluator that was down) never evaluates it twice.
//
// Thread-safety: every method may be called from any thread; `on_scored` runs on the handoff's
// own thread.
#ifndef PROLONG_SCHEDULER_EVALUATION_HANDOFF_H_
#define PROLONG_SCHEDULER_EVALUATION_HANDOFF_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/security.h"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "prolong/v1/scheduler.pb.h"

namespace prolong::scheduler {

class EvaluationHandoff {
 public:
  // The evaluation of a run's checkpoint ended: `summary` holds its scores, or `failure` says
  // why there are none.
  using OnScored = std::function<void(const std::string& run_id, const v1::EvaluationSummary&,
                                      const std::string& failure)>;

  // `default_address`: the evaluator when a spec names none; `security`: how to call it.
  EvaluationHandoff(std::string default_address, ClientSecurity security, OnScored on_scored);
  ~EvaluationHandoff();

  // Queues the checkpoint's evaluation under the spec's policy (evaluation.on_checkpoint).
  void Submit(const std::string& run_id, const v1::RunSpec& spec, const v1::Checkpoint& checkpoint);
  // Evaluations of the run not yet ended.
  int Pending(const std::string& run_id) const;
  // Drops the run's evaluations (a cancelled run); the evaluator finishes what it started.
  void Forget(const std::string& run_id);

 private:
  struct Item {
    std::string run_id;
    std::string address;
    v1::EvaluateRequest request;
    std::string evaluation_id;  // once the evaluator took it
  };
  void Loop();
  v1::Evaluator::Stub& Stub(const std::string& address);
  // One look at an item; true when it ended.
  bool Advance(Item& item);

  const std::string default_address_;
  const ClientSecurity security_;
  const OnScored on_scored_;
  mutable absl::Mutex mu_;
  std::vector<Item> items_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kMaxChannels = 16;
  std::map<std::string, std::unique_ptr<v1::Evaluator::Stub>> stubs_;  // the loop's own
  absl::Notification stopping_;
  std::thread thread_;
};

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_EVALUATION_HANDOFF_H_
