// A datamixer Batch as the StepInput (step_input.h) the trainer takes.
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

#include "absl/status/statusor.h"
#include "prolong/v1/datamixer.pb.h"
#include "trainer/train/step_input.h"

namespace prolong::train {

// A datamixer Batch as micro-batches of `sequences_per_micro_batch` sequences (the last may have
// fewer). Targets and positions are expanded with serve::ExpandSpan. INVALID_ARGUMENT naming the
// field (sequences[i].cu_seqlens, sequences[i].spans[j].loss_mask, ...) for a malformed batch.
absl::StatusOr<StepInput> StepInputFromBatch(const v1::Batch& batch,
                                             int64_t sequences_per_micro_batch);

}  // namespace prolong::train

#endif  // PROLONG_TRAINER_TRAIN_BATCH_H_
