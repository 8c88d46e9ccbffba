// Which part of a global batch one (data-parallel, context-parallel) rank receives.
//
// Data-parallel rank r of D trains B/D of the batch's B sequences (D must divide B, so every
// rank does the same number of micro-steps): which ones, rank_balance.h decides, so that every
// micro-step's attention work is balanced across ranks. With context
// parallelism of size C each sequence is cut into 2C chunks, chunk k being tokens
// [k*T / 2C, (k+1)*T / 2C) (sizes differ by at most one), and cp rank c takes chunks c and
// 2C-1-c: under a causal
// mask chunk k costs about k + 1/2 units, so every rank gets the same work (the zigzag layout
// of Megatron-LM and ring-flash-attention). Documents may cross chunk and rank boundaries.
#ifndef PROLONG_DATAMIXER_PLAN_RANK_LAYOUT_H_
#define PROLONG_DATAMIXER_PLAN_RANK_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace prolong::plan {

struct Rank {
  int dp_rank = 0;
  int dp_size = 1;
  int cp_rank = 0;
  int cp_size = 1;
  // Sequences the trainer puts in one micro-batch: the data-parallel layout balances each
  // micro-step (see rank_balance.h). 0 when the trainer did not say: the layout then balances
  // the whole step, which is balanced for every micro-batch size too, if less tightly.
  int64_t micro_batch_sequences = 0;
};

// [begin, end) of sequences in a batch, or of tokens in a sequence.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;

  int64_t size() const { return end - begin; }
  bool operator==(const Range& other) const { return begin == other.begin && end == other.end; }
};

// INVALID_ARGUMENT naming the field (rank.dp_size, rank.cp_rank, ...): sizes below 1, ranks
// outside [0, size), a dp_size that does not divide batch_sequences, or a negative
// micro_batch_sequences.
absl::Status ValidateRank(const Rank& rank, int64_t batch_sequences);

// The contiguous slice [r * B/D, (r+1) * B/D) of a batch for data-parallel rank r: the layout
// before rank_balance.h, which gave rank 0 the heaviest sequences of a batch ordered largest
// first. Kept as the baseline that `prolongctl data plan` compares against.
Range DataParallelSlice(int64_t batch_sequences, const Rank& rank);

// The token spans of a seq_len sequence that context-parallel rank `rank.cp_rank` receives, in
// sequence order, without empty spans: [0, seq_len) alone when cp_size is 1, otherwise its two
// chunks (adjacent for the middle rank, still two spans).
std::vector<Range> ContextParallelSpans(int64_t seq_len, const Rank& rank);

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_RANK_LAYOUT_H_
