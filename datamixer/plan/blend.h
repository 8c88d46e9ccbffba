// Exact mixing: how many sequences of each domain every global batch of a stage holds.
//
// Each batch gives domain i either floor(p_i * B) or that plus one sequences (as exactly as
// integer counts allow), and the extras rotate so that after any number of batches every
// domain's running total is within one sequence of p_i * B * batches. The extras go, batch by
// batch, to the domains furthest behind their running target (ties to the earlier domain): a
// deterministic greedy in the spirit of Megatron-LM's BlendedDataset, which picks one sample
// at a time and so bounds the running totals but not each batch.
#ifndef PROLONG_DATAMIXER_PLAN_BLEND_H_
#define PROLONG_DATAMIXER_PLAN_BLEND_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace prolong::plan {

// Produces the batches of a stage in order: a plan walks them once, O(domains log domains) a
// batch; the counts of batch s depend only on (proportions, batch_sequences, s).
class Blend {
 public:
  // INVALID_ARGUMENT naming the field: proportions[i] not in (0, 1], proportions not summing to
  // 1 within 1e-6, or batch_sequences < 1.
  static absl::StatusOr<Blend> Create(absl::Span<const double> proportions,
                                      int64_t batch_sequences);

  // Sequences of each domain in the next global batch; they sum to batch_sequences.
  std::vector<int64_t> Next();

  // Batches produced so far.
  int64_t steps() const { return steps_; }

 private:
  Blend() = default;

  std::vector<double> fractions_;  // p_i * B - floor(p_i * B): the expected extras per batch.
  std::vector<int64_t> base_;      // floor(p_i * B).
  int64_t extras_per_batch_ = 0;   // B - sum(base_).
  int64_t steps_ = 0;
  std::vector<int64_t> extras_given_;
};

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_BLEND_H_
