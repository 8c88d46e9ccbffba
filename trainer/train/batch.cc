#include "trainer/train/batch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "datamixer/serve/span_arrays.h"

namespace prolong::train {
namespace {

absl::Status ValidateSequence(const v1::SequenceSlice& sequence, const std::string& field) {
  const auto& bounds = sequence.cu_seqlens();
  if (bounds.empty() || bounds[0] != 0 || bounds[bounds.size() - 1] != sequence.sequence_length()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".cu_seqlens must run from 0 to ",
                                                   "sequence_length (", sequence.sequence_length(),
                                                   ")"));
  }
  for (int i = 1; i < bounds.size(); ++i) {
    if (bounds[i] < bounds[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".cu_seqlens decreases at index ", i));
    }
  }
  int64_t end = 0;
  for (int j = 0; j < sequence.spans_size(); ++j) {
    const v1::TokenSpan& span = sequence.spans(j);
    const std::string where = absl::StrCat(field, ".spans[", j, "]");
    if (span.token_ids().size() % sizeof(uint32_t) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".token_ids must hold 4 bytes a token, got ", span.token_ids().size(), " bytes"));
    }
    const int64_t size = span.token_ids().size() / sizeof(uint32_t);
    if (static_cast<int64_t>(span.loss_mask().size()) != size) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".loss_mask has ", span.loss_mask().size(), " entries for ", size, " tokens"));
    }
    if (span.offset() < end || span.offset() + size > sequence.sequence_length()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " [", span.offset(), ", ", span.offset() + size,
                       ") overlaps an earlier span or leaves the sequence of ",
                       sequence.sequence_length(), " tokens"));
    }
    end = span.offset() + size;
  }
  return absl::OkStatus();
}

// The token counts of sequences [begin, end), for one allocation.
int64_t CountTokens(const v1::Batch& batch, int begin, int end) {
  int64_t tokens = 0;
  for (int i = begin; i < end; ++i) {
    for (const v1::TokenSpan& span : batch.sequences(i).spans()) {
      tokens += span.token_ids().size() / sizeof(uint32_t);
    }
  }
  return tokens;
}

}  // namespace

absl::StatusOr<StepInput> StepInputFromBatch(const v1::Batch& batch,
                                             int64_t sequences_per_micro_batch) {
  if (sequences_per_micro_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequences_per_micro_batch must be >= 1, got ", sequences_per_micro_batch));
  }
  if (batch.global_target_tokens() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("global_target_tokens must be >= 0, got ", batch.global_target_tokens()));
  }
  for (int i = 0; i < batch.sequences_size(); ++i) {
    const absl::Status valid =
        ValidateSequence(batch.sequences(i), absl::StrCat("sequences[", i, "]"));
    if (!valid.ok()) return valid;
  }
  StepInput input;
  input.global_target_tokens = batch.global_target_tokens();
  for (int begin = 0; begin < batch.sequences_size(); begin += sequences_per_micro_batch) {
    const int end = static_cast<int>(
        std::min<int64_t>(batch.sequences_size(), begin + sequences_per_micro_batch));
    const int64_t tokens = CountTokens(batch, begin, end);
    MicroBatch micro;
    micro.input_ids = torch::empty({tokens}, torch::kInt64);
    micro.target_ids = torch::empty({tokens}, torch::kInt64);
    micro.loss_mask = torch::empty({tokens}, torch::kBool);
    micro.layout.document = torch::empty({tokens}, torch::kInt64);
    micro.layout.position = torch::empty({tokens}, torch::kInt64);
    int64_t* ids = micro.input_ids.data_ptr<int64_t>();
    int64_t* targets = micro.target_ids.data_ptr<int64_t>();
    bool* mask = micro.loss_mask.data_ptr<bool>();
    int64_t* document = micro.layout.document.data_ptr<int64_t>();
    int64_t* position = micro.layout.position.data_ptr<int64_t>();
    int64_t t = 0;
    int64_t first_document = 0;  // Of the current sequence, within the micro-batch.
    for (int i = begin; i < end; ++i) {
      const v1::SequenceSlice& sequence = batch.sequences(i);
      const auto& bounds = sequence.cu_seqlens();
      for (const v1::TokenSpan& span : sequence.spans()) {
        const serve::SpanArrays arrays = serve::ExpandSpan(sequence, span);
        for (size_t k = 0; k < arrays.token_ids.size(); ++k, ++t) {
          const int32_t offset = span.offset() + static_cast<int32_t>(k);
          // The piece holding the token: the last boundary at or before it.
          const int64_t piece =
              std::upper_bound(bounds.begin(), bounds.end(), offset) - bounds.begin() - 1;
          ids[t] = arrays.token_ids[k];
          targets[t] = arrays.target_ids[k];
          mask[t] = arrays.loss_mask[k] != 0;
          document[t] = first_document + piece;
          position[t] = arrays.position_ids[k];
        }
      }
      first_document += bounds.size() - 1;
    }
    input.micro_batches.push_back(std::move(micro));
  }
  return input;
}

}  // namespace prolong::train
