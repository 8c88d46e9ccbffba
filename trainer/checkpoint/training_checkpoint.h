// Training checkpoints with LibTorch: the model, the optimizer state and the random generators
// saved into a checkpoint directory (checkpoint_store.h: layout, atomicity, manifest, resume)
// and loaded back so that training continues bit for bit.
//
// Saving, from the training loop (one writer per directory: rank 0):
//   ASSIGN_OR_RETURN(OptimizerState optimizer_state,
//                    ExtractAdamWState(optimizer, model.named_parameters()));
//   state.rng = CaptureRngState();
//   ASSIGN_OR_RETURN(std::string path, SaveCheckpoint(dir, model, optimizer_state, state,
//   options));
// Resuming, before the first step, with the model and optimizer built as for a fresh start:
//   absl::StatusOr<CheckpointRef> resumed = ResumeLatest(dir, model, optimizer, &state);
//   NOT_FOUND: nothing to resume, start fresh; any other error: stop.
//
// Thread-safety: like the model and the optimizer they touch, none of these may run while
// another thread uses them. CaptureRngState and RestoreRngState take the generators' locks.
#ifndef PROLONG_TRAINER_CHECKPOINT_TRAINING_CHECKPOINT_H_
#define PROLONG_TRAINER_CHECKPOINT_TRAINING_CHECKPOINT_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/optim/adamw.h"
#include "torch/ordered_dict.h"
#include "torch/types.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/trainer_state.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"

namespace prolong::checkpoint {

// An optimizer's state as optimizer.safetensors holds it: tensors by name and free-form string
// metadata (the safetensors header's "__metadata__").
struct OptimizerState {
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Parameters by name, as Module::named_parameters() gives them.
using NamedParameters = torch::OrderedDict<std::string, torch::Tensor>;

// AdamW's per-parameter state as tensors named
//   exp_avg/NAME, exp_avg_sq/NAME, max_exp_avg_sq/NAME (amsgrad only), step/NAME (int64 scalar)
// for each parameter that has state (one that never received a gradient has none), and
// metadata {"optimizer": "adamw", "param_groups": N, "param_group.I.lr" ... ".amsgrad"} for
// the record. On the CPU the tensors share storage with the optimizer: save them before the
// next step. FAILED_PRECONDITION if the optimizer holds state for a parameter not in
// `parameters` (it would be lost).
absl::StatusOr<OptimizerState> ExtractAdamWState(const torch::optim::AdamW& optimizer,
                                                 const NamedParameters& parameters);

// Puts state from ExtractAdamWState into `optimizer`, whose param groups must hold `parameters`
// (the same names as when extracted). Each tensor is copied to its parameter's device and
// dtype. Parameters without saved state get none (as in a fresh optimizer). Hyperparameters
// (lr, betas, eps, weight decay) are not restored: they come from the run's config and the
// schedule. Everything is checked first, so on error the optimizer is unchanged:
// INVALID_ARGUMENT naming the tensor for a tensor of no parameter, a shape mismatch (both
// shapes given), a missing companion tensor or a state of another optimizer.
absl::Status RestoreAdamWState(const OptimizerState& state, const NamedParameters& parameters,
                               torch::optim::AdamW& optimizer);

// The default CPU generator's state, and each CUDA device's when CUDA is available.
RngState CaptureRngState();
// Sets the generators from `state`. CUDA states for devices this process does not have are
// skipped with a warning (a GPU run resumed on fewer devices or on the CPU). INVALID_ARGUMENT if
// a state is not one the generator accepts.
absl::Status RestoreRngState(const RngState& state);

struct SaveOptions {
  model::SaveOptions model;  // dtype and shard size of the model files
  int keep_last = 0;         // checkpoints kept, this one included; <= 0 keeps all
};

// Writes DIR/step-<state.step> (see checkpoint_store.h): model/ via SaveLlama, the optimizer
// state, trainer_state.json (saved_at set to now), then the manifest, atomically; an existing
// checkpoint of the same step is replaced. Returns its path.
absl::StatusOr<std::string> SaveCheckpoint(const std::string& dir,
                                           const model::LlamaForCausalLM& model,
                                           const OptimizerState& optimizer,
                                           const TrainerState& state,
                                           const SaveOptions& options = {});

// Whether to read a parameter's optimizer state, by parameter name.
using ParameterFilter = std::function<bool(const std::string& parameter)>;

// CHECKPOINT_DIR/optimizer.safetensors as tensors on the CPU; with `read`, only the tensors of
// parameters it accepts (and those not named after a parameter, so that they are still
// checked), leaving the others on disk. With `parts`, a parameter's moments must have its whole
// shape (INVALID_ARGUMENT naming the tensor otherwise) and only their parts are kept, one whole
// tensor at a time.
absl::StatusOr<OptimizerState> ReadOptimizerState(const std::string& checkpoint_dir,
                                                  const ParameterFilter& read = nullptr,
                                                  const model::ParameterParts* parts = nullptr);

struct LoadOptions {
  // Verifies the manifest first; nullopt skips it (FindLatestValid just did).
  std::optional<Verification> verification = Verification::kFull;
  bool restore_rng = true;
  // Restores the optimizer state of only the parameters this accepts (all if unset); the others
  // get none, as in a fresh optimizer. A rank that keeps a shard of the optimizer state (ZeRO-1)
  // thus never holds all of it.
  ParameterFilter optimizer_parameters;
  // Set when the model's parameters are parts of the whole (sharded weights): the checkpoint's
  // weights and moments are read whole, one tensor at a time, and only the parts kept.
  const model::ParameterParts* parts = nullptr;
};

// Loads a checkpoint into a model and an AdamW optimizer built for it (over
// model.parameters()), and reads its trainer state into `*state`. Everything is read and
// checked before the model or the optimizer is touched: a failed verification, a missing file
// (its path named), a checkpoint config.json whose shape keys differ from the model's config
// (key and both values), a weight of the wrong shape (tensor and both shapes) or optimizer
// state that does not fit is an error and changes nothing. The model's RoPE settings are not
// compared: stages change them on purpose.
absl::Status LoadCheckpoint(const std::string& checkpoint_dir, model::LlamaForCausalLM& model,
                            torch::optim::AdamW& optimizer, TrainerState* state,
                            const LoadOptions& options = {});

// Resumes from the newest valid checkpoint in `dir`: FindLatestValid (removing leftovers of a
// crash: the writer's call) then LoadCheckpoint. NOT_FOUND if there is none; an error loading
// the newest valid one is returned, not skipped, since an older one would fail the same way.
absl::StatusOr<CheckpointRef> ResumeLatest(const std::string& dir, model::LlamaForCausalLM& model,
                                           torch::optim::AdamW& optimizer, TrainerState* state,
                                           Verification verification = Verification::kFull);

}  // namespace prolong::checkpoint

#endif  // PROLONG_TRAINER_CHECKPOINT_TRAINING_CHECKPOINT_H_
