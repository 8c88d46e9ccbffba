#include "datamixer/serve/batch_builder.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "datamixer/plan/rank_balance.h"

namespace prolong::serve {
namespace {

static_assert(ABSL_IS_LITTLE_ENDIAN, "Batch arrays are little-endian; copy them byte-swapped");

// Steps whose global target count is remembered: far more than the steps ranks are apart.
constexpr size_t kCachedTargetCounts = 4096;

template <typename T>
void SetBytes(const std::vector<T>& values, std::string* bytes) {
  bytes->resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(bytes->data(), values.data(), bytes->size());
}

}  // namespace

BatchBuilder::BatchBuilder(std::shared_ptr<const plan::StagePlan> plan, const store::Shard* shard)
    : plan_(std::move(plan)), shard_(shard) {}

absl::StatusOr<BuiltBatch> BatchBuilder::Build(int64_t step, const plan::Rank& rank) const {
  RETURN_IF_ERROR(plan::ValidateRank(rank, plan_->sequences_per_batch()));
  if (step < 0 || step >= plan_->steps()) {
    return absl::OutOfRangeError(
        absl::StrCat("step: must be in [0, ", plan_->steps(), "), got ", step));
  }
  BuiltBatch built;
  built.batch.set_step(step);
  built.tokens_per_domain.assign(plan_->domains().size(), 0);
  ASSIGN_OR_RETURN(const int64_t targets, GlobalTargetTokens(step));
  built.batch.set_global_target_tokens(targets);
  // The layout needs every sequence's cost: pieces are cheap next to the tokens read below.
  const std::vector<plan::PlannedSequence> global = plan_->GlobalBatch(step);
  ASSIGN_OR_RETURN(const std::vector<int64_t> positions,
                   plan::DataParallelSequences(plan::AttentionCosts(global), rank));
  for (const int64_t j : positions) {
    const plan::PlannedSequence& sequence = global[j];
    v1::SequenceSlice* out = built.batch.add_sequences();
    RETURN_IF_ERROR(AppendSlice(sequence, rank, out));
    for (const v1::TokenSpan& span : out->spans()) {
      built.tokens_per_domain[sequence.domain] += static_cast<int64_t>(span.token_ids().size()) / 4;
    }
  }
  return built;
}

absl::Status BatchBuilder::AppendSlice(const plan::PlannedSequence& sequence,
                                       const plan::Rank& rank, v1::SequenceSlice* slice) const {
  const plan::DomainUsage& usage = plan_->domains()[sequence.domain];
  const plan::DomainIndex& domain = *usage.data;
  const bool sft = usage.packing == plan::Packing::kSft;
  slice->set_sequence_index(sequence.index);
  slice->set_sequence_length(static_cast<int32_t>(plan_->seq_len()));
  slice->set_domain(domain.name);
  int64_t boundary = 0;
  slice->add_cu_seqlens(0);
  for (const plan::Piece& piece : sequence.pieces) {
    boundary += piece.length;
    slice->add_cu_seqlens(static_cast<int32_t>(boundary));
  }

  for (const plan::Range& span : plan::ContextParallelSpans(plan_->seq_len(), rank)) {
    std::vector<uint32_t> token_ids(span.size());
    std::vector<uint8_t> loss_mask(span.size(), 0);
    uint32_t next_token_id = 0;
    int64_t piece_begin = 0;  // Where the piece starts in the sequence.
    for (const plan::Piece& piece : sequence.pieces) {
      const int64_t piece_end = piece_begin + piece.length;
      const int64_t begin = std::max(piece_begin, span.begin);
      const int64_t end = std::min(piece_end, span.end);
      if (begin < end) {
        // One token past the span, if the piece has it, is the last position's target.
        const int64_t read_end = std::min(end + 1, piece_end);
        const store::DocumentId id = domain.id(piece.document);
        const int64_t first = piece.offset + begin - piece_begin;  // In the document.
        ASSIGN_OR_RETURN(const std::vector<uint32_t> tokens,
                         shard_->ReadTokens(domain.name, id, first, read_end - begin));
        std::string mask;  // Entries [first, first + tokens.size()).
        if (sft) {
          ASSIGN_OR_RETURN(mask, shard_->ReadLossMask(domain.name, id, first, read_end - begin));
        }
        for (int64_t i = begin; i < end; ++i) {
          const int64_t k = i - begin;         // Into tokens.
          const int64_t out = i - span.begin;  // Into the span's arrays.
          token_ids[out] = tokens[k];
          if (i + 1 < piece_end) {
            if (i + 1 == span.end) next_token_id = tokens[k + 1];
            loss_mask[out] = mask.empty() || mask[k + 1] != 0 ? 1 : 0;
          }
        }
      }
      piece_begin = piece_end;
    }
    v1::TokenSpan* out = slice->add_spans();
    out->set_offset(static_cast<int32_t>(span.begin));
    SetBytes(token_ids, out->mutable_token_ids());
    out->set_next_token_id(next_token_id);
    SetBytes(loss_mask, out->mutable_loss_mask());
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> BatchBuilder::CountTargets(const plan::PlannedSequence& sequence) const {
  const plan::DomainUsage& usage = plan_->domains()[sequence.domain];
  int64_t targets = 0;
  for (const plan::Piece& piece : sequence.pieces) {
    if (usage.packing != plan::Packing::kSft) {
      targets += piece.length - 1;
      continue;
    }
    ASSIGN_OR_RETURN(const std::string mask,
                     shard_->ReadLossMask(usage.data->name, usage.data->id(piece.document)));
    if (mask.empty()) {
      targets += piece.length - 1;
      continue;
    }
    targets +=
        std::count_if(mask.begin() + piece.offset + 1, mask.begin() + piece.offset + piece.length,
                      [](char bit) { return bit != 0; });
  }
  return targets;
}

absl::StatusOr<int64_t> BatchBuilder::GlobalTargetTokens(int64_t step) const {
  {
    absl::MutexLock lock(&mutex_);
    if (auto it = target_tokens_.find(step); it != target_tokens_.end()) return it->second;
  }
  int64_t targets = 0;
  for (const plan::PlannedSequence& sequence : plan_->GlobalBatch(step)) {
    ASSIGN_OR_RETURN(const int64_t count, CountTargets(sequence));
    targets += count;
  }
  {
    absl::MutexLock lock(&mutex_);
    if (target_tokens_.size() >= kCachedTargetCounts) target_tokens_.erase(target_tokens_.begin());
    target_tokens_[step] = targets;
  }
  return targets;
}

}  // namespace prolong::serve
