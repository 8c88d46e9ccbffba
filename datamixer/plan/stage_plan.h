// The deterministic plan of a training stage: which pieces of which documents make up every
// packed sequence of every global batch.
//
// A stage (seq_len, batch_tokens, total_tokens, mixture of domain -> proportion and packing)
// and a seed, applied to the data of a fingerprint, always give the same plan:
//   - Blend decides how many sequences of each domain every global batch holds (exact mixing);
//   - each domain's Packer yields its sequences in a shuffled order, epoch after epoch (epoch e
//     of domain d shuffles with a seed derived from (seed, d, e)); a domain that would need a
//     second epoch is refused unless the stage allows repetition;
//   - within a batch, sequences are ordered by the sum of their squared document lengths,
//     largest first (ProLong's load balancing: attention work grows with the square).
// The plan keeps one small record per sequence (its domain, epoch and start in that epoch's
// order) and recomputes the pieces on demand, so it costs about 24 bytes a sequence whatever
// the documents look like.
//
// Thread-safety: a built plan is immutable; any number of threads may read it.
#ifndef PROLONG_DATAMIXER_PLAN_STAGE_PLAN_H_
#define PROLONG_DATAMIXER_PLAN_STAGE_PLAN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datamixer/plan/data_index.h"
#include "datamixer/plan/pack.h"
#include "prolong/v1/run_spec.pb.h"

namespace prolong::plan {

// A stage's use of one domain.
struct DomainUsage {
  const DomainIndex* data = nullptr;
  Packing packing = Packing::kShort;
  int64_t sequences = 0;  // Over the whole stage.
  int64_t tokens = 0;     // sequences * seq_len.
  // Sequences taken / sequences one epoch holds: above 1 only with allow_repetition.
  double epochs = 0;
};

struct PlannedSequence {
  // Position in the plan: step * sequences_per_batch + position within the batch.
  int64_t index = 0;
  // Index into StagePlan::domains().
  int32_t domain = 0;
  // In sequence order; Piece::document indexes the domain's DataIndex entries. Their lengths
  // sum to seq_len.
  std::vector<Piece> pieces;
};

// Sum of the squared piece lengths: the attention work of a document-masked sequence.
double SumOfSquaredLengths(const std::vector<Piece>& pieces);

// SumOfSquaredLengths of each sequence of a batch, in batch order: what rank_balance.h balances.
std::vector<double> AttentionCosts(const std::vector<PlannedSequence>& batch);

// The id of the plan of (data fingerprint, stage, seed): hex of the first 16 bytes of a SHA-256
// over them (the stage in deterministic proto serialization).
std::string PlanId(const std::string& fingerprint, const v1::StageSpec& stage, uint64_t seed);

class StagePlan {
 public:
  // Errors name the field (stage.seq_len, stage.mixture[1].domain, ...): INVALID_ARGUMENT for
  // a malformed stage, NOT_FOUND for a domain the data does not have, FAILED_PRECONDITION for a
  // domain that cannot fill its share (with the shortfall) without allowed repetition.
  static absl::StatusOr<std::shared_ptr<const StagePlan>> Build(
      const v1::StageSpec& stage, uint64_t seed, std::shared_ptr<const DataIndex> data);

  // Hex digest of (data fingerprint, stage, seed): equal ids mean equal plans.
  const std::string& id() const { return id_; }
  const v1::StageSpec& stage() const { return stage_; }
  uint64_t seed() const { return seed_; }
  const DataIndex& data() const { return *data_; }
  int64_t seq_len() const { return stage_.seq_len(); }
  int64_t sequences_per_batch() const { return sequences_per_batch_; }
  int64_t steps() const { return steps_; }
  const std::vector<DomainUsage>& domains() const { return domains_; }

  // Sequence `index` of the plan (0 <= index < steps * sequences_per_batch).
  PlannedSequence Sequence(int64_t index) const;
  // The sequences of global batch `step` (0 <= step < steps), in batch order.
  std::vector<PlannedSequence> GlobalBatch(int64_t step) const;

 private:
  StagePlan() = default;

  struct SequenceRecord {
    int32_t domain = 0;
    int32_t epoch = 0;
    PackPosition start;
  };

  std::string id_;
  v1::StageSpec stage_;
  uint64_t seed_ = 0;
  std::shared_ptr<const DataIndex> data_;
  int64_t sequences_per_batch_ = 0;
  int64_t steps_ = 0;
  std::vector<DomainUsage> domains_;
  std::vector<std::vector<Packer>> packers_;  // [domain][epoch]
  std::vector<SequenceRecord> sequences_;
};

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_STAGE_PLAN_H_
