// Where a model's weights come from, given one path: a Hugging Face model directory
// (config.json and safetensors), a training checkpoint (DIR/step-N with its MANIFEST.json), or a
// directory of training checkpoints (its newest that verifies). The trainer starts stages from
// any of them (--init-checkpoint) and the evaluator scores any of them. No LibTorch.
#ifndef PROLONG_TRAINER_CHECKPOINT_MODEL_SOURCE_H_
#define PROLONG_TRAINER_CHECKPOINT_MODEL_SOURCE_H_

#include <string>

#include "absl/status/statusor.h"
#include "trainer/checkpoint/checkpoint_store.h"

namespace prolong::checkpoint {

struct ModelSource {
  // The Hugging Face model directory to load.
  std::string model_dir;
  // The training checkpoint it belongs to (DIR/step-N); empty for a plain model directory.
  std::string training_checkpoint;
};

// NOT_FOUND when `path` is not a directory or holds none of the three; a training checkpoint
// that does not verify (`verification`) gives VerifyCheckpoint's error (NOT_FOUND for a missing
// file, DATA_LOSS for a size or checksum mismatch, naming the file).
absl::StatusOr<ModelSource> ResolveModelSource(const std::string& path, Verification verification);

// A stable identity of the weights and config: SHA-256 (hex) over the model files' names and
// checksums, taken from the training checkpoint's manifest when there is one, else computed
// from the files of the model directory. Renaming or copying the directory keeps it; any
// changed byte of the model changes it.
absl::StatusOr<std::string> ModelFingerprint(const ModelSource& source);

}  // namespace prolong::checkpoint

#endif  // PROLONG_TRAINER_CHECKPOINT_MODEL_SOURCE_H_
