// trainer_state.json: everything a training job needs, besides the model and the optimizer, to
// continue exactly where a checkpoint left it. Without LibTorch (training_checkpoint.h captures
// and restores the RNG states).
#ifndef PROLONG_TRAINER_CHECKPOINT_TRAINER_STATE_H_
#define PROLONG_TRAINER_CHECKPOINT_TRAINER_STATE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::checkpoint {

// Random generator states as the generators give them (raw bytes; base64 in the JSON).
struct RngState {
  std::string torch_cpu;                // empty if not captured
  std::vector<std::string> torch_cuda;  // one per visible device; empty without CUDA

  bool operator==(const RngState& other) const;
};

// Who wrote the checkpoint, for operators and for resuming on another layout.
struct RunInfo {
  std::string run_name;
  int64_t dp_size = 1;
  int64_t cp_size = 1;
  std::map<std::string, std::string> versions;  // e.g. {"prolong": "...", "torch": "1.13.1"}

  bool operator==(const RunInfo& other) const;
};

struct TrainerState {
  int64_t step = 0;  // optimizer steps completed; the checkpoint is DIR/step-<step>
  int64_t stage_index = 0;
  std::string stage_name;
  // Opaque to this library: the schedule's and the data stream's own keys, e.g. schedule
  // {"stage_step": "120", "lr": "9.5e-06"} and cursor {"plan_id": ..., "data_fingerprint": ...,
  // "stage": ..., "seed": ..., "global_step": ...}.
  std::map<std::string, std::string> schedule;
  std::map<std::string, std::string> data_cursor;
  RngState rng;
  RunInfo run;
  double elapsed_seconds = 0;  // training wall time so far, across restarts
  std::string saved_at;        // RFC 3339, UTC; SaveCheckpoint fills it in

  bool operator==(const TrainerState& other) const;
};

std::string TrainerStateToJson(const TrainerState& state);
// INVALID_ARGUMENT "SOURCE: KEY ..." for malformed JSON or a missing or mistyped key. Keys this
// version does not know are ignored, so that newer checkpoints stay readable.
absl::StatusOr<TrainerState> ParseTrainerState(absl::string_view json, absl::string_view source);
// CHECKPOINT_DIR/trainer_state.json. NOT_FOUND naming the path if it is missing.
absl::StatusOr<TrainerState> ReadTrainerState(const std::string& checkpoint_dir);

}  // namespace prolong::checkpoint

#endif  // PROLONG_TRAINER_CHECKPOINT_TRAINER_STATE_H_
