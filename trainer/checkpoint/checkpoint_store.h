// A directory of training checkpoints, written atomically and verified on resume, without
// LibTorch (training_checkpoint.h puts the model and the optimizer in them).
//
// DIR/step-00001234/ is one checkpoint:
//   model/                  the model in Hugging Face layout (config.json, safetensors)
//   optimizer.safetensors   optimizer state tensors by name
//   trainer_state.json      step, stage, schedule, data cursor, RNG states, run metadata
//   MANIFEST.json           written last: every other file's path, size and SHA-256
//
// A checkpoint is built in DIR/.tmp-step-00001234-RANDOM/, every file and directory is
// fsynced, and only then renamed to DIR/step-00001234/ (and DIR fsynced): a crash at any moment
// leaves the checkpoints that were there plus, at most, the new one complete. Leftovers of a
// crash (.tmp-* directories, a checkpoint renamed away while being replaced) are dealt with by
// RecoverDirectory, which the next save runs, and resuming may run.
//
// Thread-safety and processes: one writer per directory (the training job's rank 0). Readers
// (an evaluator watching the directory) may list, verify and load concurrently, but must not
// call RecoverDirectory or pass remove_leftovers: to them a save in progress looks like a
// leftover. A checkpoint that retention removes disappears under a reader that is still
// listing it; files it already opened stay readable.
#ifndef PROLONG_TRAINER_CHECKPOINT_CHECKPOINT_STORE_H_
#define PROLONG_TRAINER_CHECKPOINT_CHECKPOINT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::checkpoint {

inline constexpr char kManifestFile[] = "MANIFEST.json";
inline constexpr char kModelDir[] = "model";
inline constexpr char kOptimizerFile[] = "optimizer.safetensors";
inline constexpr char kTrainerStateFile[] = "trainer_state.json";

// "step-00001234": at least 8 digits, so that names sort by step up to 10^8 steps.
std::string StepDirName(int64_t step);
// The step of a "step-DIGITS" name; nullopt for any other name.
std::optional<int64_t> ParseStepDirName(absl::string_view name);

struct ManifestEntry {
  std::string path;  // relative to the checkpoint directory, '/'-separated
  int64_t size = 0;
  std::string sha256;  // lowercase hex

  bool operator==(const ManifestEntry& other) const;
};

struct Manifest {
  int64_t step = 0;
  std::vector<ManifestEntry> files;  // sorted by path
};

std::string ManifestToJson(const Manifest& manifest);
// INVALID_ARGUMENT "SOURCE: ..." for malformed JSON, a missing or mistyped field, or a path that
// is absolute or leaves the directory.
absl::StatusOr<Manifest> ParseManifest(absl::string_view json, absl::string_view source);

// Size and SHA-256 of each of `relative_paths` under `root`, hashed a few at a time. NOT_FOUND
// naming a missing file.
absl::StatusOr<std::vector<ManifestEntry>> DescribeFiles(
    const std::string& root, const std::vector<std::string>& relative_paths);

enum class Verification {
  kFull,       // sizes and SHA-256 of every file
  kSizesOnly,  // presence and sizes: for huge checkpoints when speed matters
};

// OK if CHECKPOINT_DIR/MANIFEST.json parses, names the step of the directory's name (when the
// name is step-N), lists model/config.json, optimizer.safetensors and trainer_state.json, and
// every file it lists is present with its size (and checksum). Otherwise an error whose
// message starts with the directory and says what is wrong: NOT_FOUND for a missing manifest
// or file, DATA_LOSS for a size or checksum mismatch, INVALID_ARGUMENT for an unparsable
// manifest. Files the manifest does not list are ignored.
absl::Status VerifyCheckpoint(const std::string& checkpoint_dir,
                              Verification verification = Verification::kFull);

struct CheckpointRef {
  int64_t step = 0;
  std::string path;  // DIR/step-N
};

// The step-N directories under `dir`, by increasing step, verified or not. Empty if `dir` does
// not exist.
absl::StatusOr<std::vector<CheckpointRef>> ListCheckpoints(const std::string& dir);

struct FindOptions {
  Verification verification = Verification::kFull;
  // Runs RecoverDirectory first. Only the directory's writer may do this (see above).
  bool remove_leftovers = false;
};

// The newest checkpoint under `dir` that verifies, walking from the highest step down; each one
// skipped is logged as a warning naming it and what is wrong. NOT_FOUND if none verifies.
absl::StatusOr<CheckpointRef> FindLatestValid(const std::string& dir,
                                              const FindOptions& options = {});

// Cleans up after a crash, logging each action: removes .tmp-* entries (unfinished saves and
// removals), and for a checkpoint that was renamed away to be replaced (.replaced-step-N-*)
// either removes it (step-N exists: the replacement finished) or renames it back to step-N.
absl::Status RecoverDirectory(const std::string& dir);

// Keeps the `keep_last` checkpoints with the highest steps up to `newest_step` (which counts as
// one of them) and removes the older ones; checkpoints above `newest_step` (from a run that was
// rolled back) are left alone. keep_last <= 0 keeps everything. Each removal is a rename to a
// .tmp-* name and then a recursive delete, so a crash never leaves a half-deleted step-N.
absl::Status ApplyRetention(const std::string& dir, int64_t newest_step, int keep_last);

struct CommitOptions {
  // Checkpoints to keep, this one included (ApplyRetention); <= 0 keeps all.
  int keep_last = 0;
};

// Builds one checkpoint: the caller writes its files under staging_dir(), then commits.
class CheckpointWriter {
 public:
  // Creates `dir` if needed, runs RecoverDirectory, and creates the staging directory
  // DIR/.tmp-step-N-RANDOM. INVALID_ARGUMENT for a negative step.
  static absl::StatusOr<std::unique_ptr<CheckpointWriter>> Begin(const std::string& dir,
                                                                 int64_t step);

  // Removes the staging directory unless committed.
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  const std::string& staging_dir() const { return staging_dir_; }
  int64_t step() const { return step_; }

  // Hashes and fsyncs every file under the staging directory, writes MANIFEST.json, fsyncs the
  // directories, renames the staging directory to DIR/step-N and fsyncs DIR. An existing step-N
  // is renamed away first and removed after (RecoverDirectory undoes a crash in between). Then
  // applies retention; a failure there is logged, not returned, as the checkpoint is saved.
  // Returns DIR/step-N. May be called once.
  absl::StatusOr<std::string> Commit(const CommitOptions& options = {});

 private:
  CheckpointWriter(std::string dir, int64_t step, std::string staging_dir)
      : dir_(std::move(dir)), step_(step), staging_dir_(std::move(staging_dir)) {}

  std::string dir_;
  int64_t step_;
  std::string staging_dir_;
  bool committed_ = false;
};

}  // namespace prolong::checkpoint

#endif  // PROLONG_TRAINER_CHECKPOINT_CHECKPOINT_STORE_H_
