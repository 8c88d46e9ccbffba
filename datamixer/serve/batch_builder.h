// Turns a stage plan into what a trainer rank receives: its share of a global batch (balanced
// across data-parallel ranks, plan/rank_balance.h), with the tokens read from the store,
// targets, loss mask, positions and document boundaries.
//
// Thread-safety: Build and GlobalTargetTokens may be called from many threads at once.
#ifndef PROLONG_DATAMIXER_SERVE_BATCH_BUILDER_H_
#define PROLONG_DATAMIXER_SERVE_BATCH_BUILDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "datamixer/plan/rank_layout.h"
#include "datamixer/plan/stage_plan.h"
#include "datamixer/store/shard.h"
#include "prolong/v1/datamixer.pb.h"

namespace prolong::serve {

struct BuiltBatch {
  v1::Batch batch;
  // Tokens of this rank's slice per plan domain (StagePlan::domains() order).
  std::vector<int64_t> tokens_per_domain;
};

class BatchBuilder {
 public:
  // `shard` must outlive the builder and hold the data the plan was built from.
  BatchBuilder(std::shared_ptr<const plan::StagePlan> plan, const store::Shard* shard);

  const plan::StagePlan& plan() const { return *plan_; }

  // The share of global batch `step` for `rank`, in the order the rank trains it (its
  // micro-batches are consecutive runs of it). INVALID_ARGUMENT for a bad rank (see
  // plan::ValidateRank), OUT_OF_RANGE for a step outside the plan, DATA_LOSS or NOT_FOUND if
  // the store no longer holds a planned document.
  absl::StatusOr<BuiltBatch> Build(int64_t step, const plan::Rank& rank) const;

  // Target tokens of the whole global batch (every rank): the loss's exact denominator. It
  // walks the whole batch (and reads SFT masks), so it is cached: every rank asks for it.
  absl::StatusOr<int64_t> GlobalTargetTokens(int64_t step) const;

 private:
  absl::Status AppendSlice(const plan::PlannedSequence& sequence, const plan::Rank& rank,
                           v1::SequenceSlice* slice) const;
  absl::StatusOr<int64_t> CountTargets(const plan::PlannedSequence& sequence) const;

  std::shared_ptr<const plan::StagePlan> plan_;
  const store::Shard* shard_;
  mutable absl::Mutex mutex_;
  mutable std::map<int64_t, int64_t> target_tokens_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace prolong::serve

#endif  // PROLONG_DATAMIXER_SERVE_BATCH_BUILDER_H_
