// What one rank trains on in one global step: its micro-batches (packed sequences as tensors)
// and the token count that makes the loss an exact global token average.
//
// Masking and positions under context parallelism: a token's document id is the index of its
// document piece in the sequence's cu_seqlens (plus the pieces of earlier sequences of the
// micro-batch), so every cp rank numbers the documents of a sequence alike; its position is
// its offset within the piece, as the datamixer sends it (RoPE restarts at each piece). That
// one position serves both RoPE and the causal mask: within a document piece it is the
// sequence index minus the piece's start, so "same document and key position <= query
// position" is the same relation as with global sequence indexes, on whichever ranks the two
// tokens sit.
#ifndef PROLONG_TRAINER_TRAIN_BATCH_H_
#define PROLONG_TRAINER_TRAIN_BATCH_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "prolong/v1/datamixer.pb.h"
#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"

namespace prolong::train {

// One forward and backward: one or more packed sequences (or a cp rank's chunks of them) laid
// end to end. All tensors [T] on the CPU.
struct MicroBatch {
  torch::Tensor input_ids;   // int64
  torch::Tensor target_ids;  // int64; anything where loss_mask is false
  torch::Tensor loss_mask;   // bool: the token's target counts in the loss
  attention::TokenLayout layout;
};

struct StepInput {
  // In order; every cp rank of a replica gets the same number (their collectives pair up).
  std::vector<MicroBatch> micro_batches;
  // Loss-masked tokens of the whole global batch: every dp and cp rank, every micro-batch.
  int64_t global_target_tokens = 0;
};

// A datamixer Batch as micro-batches of `sequences_per_micro_batch` sequences (the last may have
// fewer). Targets and positions are expanded with serve::ExpandSpan. INVALID_ARGUMENT naming the
// field (sequences[i].cu_seqlens, sequences[i].spans[j].loss_mask, ...) for a malformed batch.
absl::StatusOr<StepInput> StepInputFromBatch(const v1::Batch& batch,
                                             int64_t sequences_per_micro_batch);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_BATCH_H_
