#include "datamixer/plan/rank_layout.h"

#include "absl/strings/str_cat.h"

namespace prolong::plan {

absl::Status ValidateRank(const Rank& rank, int64_t batch_sequences) {
  if (rank.dp_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank.dp_size: must be at least 1, got ", rank.dp_size));
  }
  if (rank.cp_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank.cp_size: must be at least 1, got ", rank.cp_size));
  }
  if (rank.dp_rank < 0 || rank.dp_rank >= rank.dp_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank.dp_rank: must be in [0, ", rank.dp_size, "), got ", rank.dp_rank));
  }
  if (rank.cp_rank < 0 || rank.cp_rank >= rank.cp_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank.cp_rank: must be in [0, ", rank.cp_size, "), got ", rank.cp_rank));
  }
  if (batch_sequences % rank.dp_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank.dp_size: must divide the ", batch_sequences,
                     " sequences of a global batch, got ", rank.dp_size));
  }
  if (rank.micro_batch_sequences < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rank.micro_batch_sequences: must not be negative, got ", rank.micro_batch_sequences));
  }
  return absl::OkStatus();
}

Range DataParallelSlice(int64_t batch_sequences, const Rank& rank) {
  const int64_t per_rank = batch_sequences / rank.dp_size;
  return {rank.dp_rank * per_rank, (rank.dp_rank + 1) * per_rank};
}

std::vector<Range> ContextParallelSpans(int64_t seq_len, const Rank& rank) {
  if (rank.cp_size == 1) return {{0, seq_len}};
  const int64_t chunks = 2 * int64_t{rank.cp_size};
  auto chunk_range = [&](int64_t k) {
    return Range{k * seq_len / chunks, (k + 1) * seq_len / chunks};
  };
  std::vector<Range> spans;
  for (const Range& span : {chunk_range(rank.cp_rank), chunk_range(chunks - 1 - rank.cp_rank)}) {
    if (span.size() > 0) spans.push_back(span);
  }
  return spans;
}

}  // namespace prolong::plan
