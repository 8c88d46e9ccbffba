// The long-document loss by position: the mean next-token cross-entropy of a store domain's
// documents in buckets of positions (0-1K, 1K-2K, ... up to a maximum length). A diagnostic shown
// next to the scores, never a ranking score (ProLong, Fig. 1: perplexity keeps improving where
// downstream scores do not), but the plainest view of what a long-context stage changes: the
// loss at positions beyond the earlier stage's length falls once the model has trained there.
//
// Each document is read from its start, cut at max_length, and run through the model in chunks
// with a KV cache, so memory stays that of one chunk; logits are made a block at a time.
#ifndef PROLONG_EVALUATOR_DIAGNOSTICS_POSITION_LOSS_H_
#define PROLONG_EVALUATOR_DIAGNOSTICS_POSITION_LOSS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datamixer/store/shard.h"

namespace prolong::model {
class LlamaForCausalLM;
}  // namespace prolong::model

namespace prolong::evaluator::diagnostics {

struct PositionLossOptions {
  std::string domain;
  int64_t max_documents = 16;  // the domain's first documents in key order
  int64_t max_length = 4096;   // tokens read per document
  int64_t bucket_tokens = 1024;
  int64_t chunk_tokens = 4096;  // tokens per forward pass
};

struct PositionBucket {
  int64_t begin = 0;  // positions [begin, end) of the predicted tokens (position 0 is never one)
  int64_t end = 0;
  int64_t tokens = 0;  // predictions counted
  double mean_loss = 0;
};

struct PositionLoss {
  int64_t documents = 0;
  std::vector<PositionBucket> buckets;  // every bucket up to max_length, empty ones with 0 tokens
};

// The loss by position of the checkpoint at `checkpoint` (generate::LoadInferenceModel: a model
// directory, a training checkpoint or the newest of a directory; on `device`) over documents of
// the datamixer store at `store_dir`. max_length <= 0 takes the model's maximum length.
absl::StatusOr<PositionLoss> MeasureCheckpointPositionLoss(const std::string& checkpoint,
                                                           const std::string& store_dir,
                                                           PositionLossOptions options,
                                                           const std::string& device);

// Leaves the model's attention cores at their default (the cache's are installed meanwhile).
// INVALID_ARGUMENT for bad options, NOT_FOUND for a domain with no document, a token id
// outside the model's vocabulary named with its document.
absl::StatusOr<PositionLoss> MeasurePositionLoss(model::LlamaForCausalLM& model,
                                                 const store::Shard& shard,
                                                 const PositionLossOptions& options);

}  // namespace prolong::evaluator::diagnostics

#endif  // PROLONG_EVALUATOR_DIAGNOSTICS_POSITION_LOSS_H_
