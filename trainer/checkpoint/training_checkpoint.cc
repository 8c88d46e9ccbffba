#include "trainer/checkpoint/training_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>
#include <vector>

#include "ATen/Context.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "torch/cuda.h"
#include "torch/version.h"
#include "trainer/model/llama_config.h"
#include "trainer/model/safetensors.h"
#include "trainer/parallel/optimizer_state_key.h"

namespace prolong::checkpoint {
namespace {

namespace fs = std::filesystem;
using torch::Tensor;
using torch::optim::AdamW;
using torch::optim::AdamWOptions;
using torch::optim::AdamWParamState;

constexpr char kAdamW[] = "adamw";
constexpr char kExpAvg[] = "exp_avg";
constexpr char kExpAvgSq[] = "exp_avg_sq";
constexpr char kMaxExpAvgSq[] = "max_exp_avg_sq";
constexpr char kStep[] = "step";

using StateMap = parallel::OptimizerStateMap;
using StateKey = parallel::OptimizerStateKey;

StateKey KeyOf(const Tensor& parameter) { return parallel::OptimizerStateKeyOf(parameter); }

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string Join(const std::string& dir, absl::string_view name) {
  return (fs::path(dir) / std::string(name)).string();
}

absl::Status TorchError(absl::string_view what, const std::exception& error) {
  // c10::Error's what() carries a backtrace after the first line.
  std::string message = error.what();
  if (const size_t newline = message.find('\n'); newline != std::string::npos) {
    message.resize(newline);
  }
  return absl::InternalError(absl::StrCat(what, ": ", message));
}

std::string Format(double value) { return absl::StrCat(value); }

// What RestoreAdamWState will put into the optimizer, checked and converted.
struct PlannedState {
  StateKey key;
  std::unique_ptr<AdamWParamState> state;  // null: the parameter gets no state
};

absl::StatusOr<std::vector<PlannedState>> PlanAdamWRestore(const OptimizerState& saved,
                                                           const NamedParameters& parameters,
                                                           const AdamW& optimizer) {
  auto error = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  const auto kind = saved.metadata.find("optimizer");
  if (kind == saved.metadata.end() || kind->second != kAdamW) {
    return error("optimizer state is not AdamW's (metadata optimizer = \"",
                 kind == saved.metadata.end() ? "" : kind->second, "\")");
  }
  // The optimizer's parameters, and whether their group keeps max_exp_avg_sq.
  std::map<const c10::TensorImpl*, bool> amsgrad;
  for (const auto& group : optimizer.param_groups()) {
    const auto* options = dynamic_cast<const AdamWOptions*>(&group.options());
    for (const Tensor& parameter : group.params()) {
      amsgrad[parameter.unsafeGetTensorImpl()] = options != nullptr && options->amsgrad();
    }
  }

  // Saved tensors by parameter name, then by kind.
  std::map<std::string, std::map<std::string, const Tensor*>> by_parameter;
  for (const auto& [name, tensor] : saved.tensors) {
    const size_t slash = name.find('/');
    const std::string kind_name = name.substr(0, slash);
    if (slash == std::string::npos || (kind_name != kExpAvg && kind_name != kExpAvgSq &&
                                       kind_name != kMaxExpAvgSq && kind_name != kStep)) {
      return error("unexpected optimizer tensor ", name,
                   " (expected exp_avg/, exp_avg_sq/, max_exp_avg_sq/ or step/ and a parameter)");
    }
    const std::string parameter = name.substr(slash + 1);
    if (parameters.find(parameter) == nullptr) {
      return error("optimizer tensor ", name, " is for ", parameter,
                   ", which the model does not have");
    }
    by_parameter[parameter][kind_name] = &tensor;
  }

  std::vector<PlannedState> plan;
  for (const auto& item : parameters) {
    const std::string& name = item.key();
    const Tensor& parameter = item.value();
    const auto it = by_parameter.find(name);
    if (it == by_parameter.end()) {
      plan.push_back({KeyOf(parameter), nullptr});
      continue;
    }
    const auto group = amsgrad.find(parameter.unsafeGetTensorImpl());
    if (group == amsgrad.end()) {
      return error("parameter ", name, " has saved optimizer state but is not in the optimizer");
    }
    const std::map<std::string, const Tensor*>& kinds = it->second;
    for (const char* required : {kExpAvg, kExpAvgSq, kStep}) {
      if (kinds.count(required) == 0) {
        return error("optimizer state of ", name, " lacks ", required, "/", name);
      }
    }
    auto state = std::make_unique<AdamWParamState>();
    const Tensor& step = *kinds.at(kStep);
    if (step.numel() != 1 || c10::isFloatingType(step.scalar_type()) || step.item<int64_t>() < 0) {
      return error("optimizer tensor step/", name, " must hold one non-negative integer");
    }
    state->step(step.item<int64_t>());
    auto moment = [&](const char* kind_name) -> absl::StatusOr<Tensor> {
      const Tensor& tensor = *kinds.at(kind_name);
      if (!tensor.sizes().equals(parameter.sizes())) {
        return error("optimizer tensor ", kind_name, "/", name, " has shape ",
                     ShapeString(tensor.sizes()), ", the parameter has ",
                     ShapeString(parameter.sizes()));
      }
      if (!c10::isFloatingType(tensor.scalar_type())) {
        return error("optimizer tensor ", kind_name, "/", name, " is not floating-point");
      }
      return tensor.to(parameter.device(), parameter.scalar_type(), /*non_blocking=*/false,
                       /*copy=*/true);
    };
    ASSIGN_OR_RETURN(Tensor exp_avg, moment(kExpAvg));
    ASSIGN_OR_RETURN(Tensor exp_avg_sq, moment(kExpAvgSq));
    state->exp_avg(exp_avg);
    state->exp_avg_sq(exp_avg_sq);
    if (kinds.count(kMaxExpAvgSq) != 0) {
      ASSIGN_OR_RETURN(Tensor max_exp_avg_sq, moment(kMaxExpAvgSq));
      state->max_exp_avg_sq(max_exp_avg_sq);
    } else if (group->second) {
      // AdamW with amsgrad starts it at zero too.
      state->max_exp_avg_sq(torch::zeros_like(parameter, at::MemoryFormat::Preserve));
    }
    plan.push_back({KeyOf(parameter), std::move(state)});
  }
  return plan;
}

void ApplyAdamWRestore(std::vector<PlannedState> plan, AdamW& optimizer) {
  StateMap& states = optimizer.state();
  for (PlannedState& planned : plan) {
    if (planned.state == nullptr) {
      states.erase(planned.key);
    } else {
      states[planned.key] = std::move(planned.state);
    }
  }
}

std::string GeneratorState(at::Generator generator) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  const Tensor state = generator.get_state().contiguous();
  return std::string(static_cast<const char*>(state.data_ptr()), state.nbytes());
}

absl::Status SetGeneratorState(at::Generator generator, const std::string& bytes,
                               absl::string_view what) {
  try {
    Tensor state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
    std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  } catch (const std::exception& e) {
    std::string message = e.what();
    message.resize(std::min(message.find('\n'), message.size()));
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a state this generator accepts: ", message));
  }
  return absl::OkStatus();
}

// Shape-defining config.json keys: a checkpoint whose values differ does not belong to the
// model, even when the tensor shapes happen to agree (heads x head_dim).
absl::Status CompareShapeKeys(const model::LlamaConfig& saved, const model::LlamaConfig& model,
                              const std::string& source) {
  const std::pair<const char*, std::pair<int64_t, int64_t>> keys[] = {
      {"vocab_size", {saved.vocab_size, model.vocab_size}},
      {"hidden_size", {saved.hidden_size, model.hidden_size}},
      {"intermediate_size", {saved.intermediate_size, model.intermediate_size}},
      {"num_hidden_layers", {saved.num_hidden_layers, model.num_hidden_layers}},
      {"num_attention_heads", {saved.num_attention_heads, model.num_attention_heads}},
      {"num_key_value_heads", {saved.num_key_value_heads, model.num_key_value_heads}},
      {"head_dim", {saved.head_dim, model.head_dim}},
      {"tie_word_embeddings", {saved.tie_word_embeddings, model.tie_word_embeddings}},
  };
  for (const auto& [key, values] : keys) {
    if (values.first != values.second) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", key, " is ", values.first, ", the model has ", values.second));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OptimizerState> ExtractAdamWState(const AdamW& optimizer,
                                                 const NamedParameters& parameters) try {
  const StateMap& states = optimizer.state();
  std::set<StateKey> named;
  for (const auto& item : parameters) named.insert(KeyOf(item.value()));
  for (const auto& entry : states) {
    if (named.count(entry.first) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("the optimizer holds state for a parameter that is not among the ",
                       parameters.size(), " named parameters"));
    }
  }

  OptimizerState result;
  auto host = [](const Tensor& tensor) { return tensor.detach().to(torch::kCPU).contiguous(); };
  for (const auto& item : parameters) {
    const auto it = states.find(KeyOf(item.value()));
    if (it == states.end()) continue;
    const auto* state = dynamic_cast<const AdamWParamState*>(it->second.get());
    if (state == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("the optimizer state of ", item.key(), " is not AdamW's"));
    }
    const std::string& name = item.key();
    result.tensors[absl::StrCat(kExpAvg, "/", name)] = host(state->exp_avg());
    result.tensors[absl::StrCat(kExpAvgSq, "/", name)] = host(state->exp_avg_sq());
    if (state->max_exp_avg_sq().defined()) {
      result.tensors[absl::StrCat(kMaxExpAvgSq, "/", name)] = host(state->max_exp_avg_sq());
    }
    result.tensors[absl::StrCat(kStep, "/", name)] =
        torch::tensor(static_cast<int64_t>(state->step()), torch::kInt64);
  }

  result.metadata["optimizer"] = kAdamW;
  result.metadata["param_groups"] = absl::StrCat(optimizer.param_groups().size());
  for (size_t i = 0; i < optimizer.param_groups().size(); ++i) {
    const auto* options = dynamic_cast<const AdamWOptions*>(&optimizer.param_groups()[i].options());
    if (options == nullptr) continue;
    const std::string prefix = absl::StrCat("param_group.", i, ".");
    result.metadata[prefix + "lr"] = Format(options->lr());
    result.metadata[prefix + "beta1"] = Format(std::get<0>(options->betas()));
    result.metadata[prefix + "beta2"] = Format(std::get<1>(options->betas()));
    result.metadata[prefix + "eps"] = Format(options->eps());
    result.metadata[prefix + "weight_decay"] = Format(options->weight_decay());
    result.metadata[prefix + "amsgrad"] = options->amsgrad() ? "true" : "false";
    result.metadata[prefix + "parameters"] =
        absl::StrCat(optimizer.param_groups()[i].params().size());
  }
  return result;
} catch (const std::exception& e) {
  return TorchError("extracting AdamW state", e);
}

absl::Status RestoreAdamWState(const OptimizerState& state, const NamedParameters& parameters,
                               AdamW& optimizer) try {
  ASSIGN_OR_RETURN(std::vector<PlannedState> plan, PlanAdamWRestore(state, parameters, optimizer));
  ApplyAdamWRestore(std::move(plan), optimizer);
  return absl::OkStatus();
} catch (const std::exception& e) {
  return TorchError("restoring AdamW state", e);
}

RngState CaptureRngState() {
  RngState state;
  state.torch_cpu = GeneratorState(at::globalContext().defaultGenerator(at::kCPU));
  if (torch::cuda::is_available()) {
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) {
      state.torch_cuda.push_back(GeneratorState(at::globalContext().defaultGenerator(
          at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i)))));
    }
  }
  return state;
}

absl::Status RestoreRngState(const RngState& state) {
  if (!state.torch_cpu.empty()) {
    RETURN_IF_ERROR(SetGeneratorState(at::globalContext().defaultGenerator(at::kCPU),
                                      state.torch_cpu, "rng.torch_cpu"));
  }
  const size_t devices = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  if (state.torch_cuda.size() > devices) {
    PROLONG_LOG(WARNING) << "the checkpoint has CUDA generator states for "
                         << state.torch_cuda.size() << " devices, this process has " << devices
                         << ": restoring " << devices;
  }
  for (size_t i = 0; i < std::min(devices, state.torch_cuda.size()); ++i) {
    RETURN_IF_ERROR(SetGeneratorState(at::globalContext().defaultGenerator(
                                          at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i))),
                                      state.torch_cuda[i],
                                      absl::StrCat("rng.torch_cuda[", i, "]")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SaveCheckpoint(const std::string& dir,
                                           const model::LlamaForCausalLM& model,
                                           const OptimizerState& optimizer,
                                           const TrainerState& state,
                                           const SaveOptions& options) try {
  ASSIGN_OR_RETURN(const std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Begin(dir, state.step));
  RETURN_IF_ERROR(model::SaveLlama(model, Join(writer->staging_dir(), kModelDir), options.model));

  std::vector<Tensor> host;
  host.reserve(optimizer.tensors.size());
  std::vector<safetensors::NamedTensor> tensors;
  for (const auto& [name, tensor] : optimizer.tensors) {
    host.push_back(tensor.detach().to(torch::kCPU).contiguous());
    absl::StatusOr<safetensors::TensorView> view = model::ViewOf(host.back());
    if (!view.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer tensor ", name, ": ", view.status().message()));
    }
    tensors.push_back({name, *std::move(view)});
  }
  RETURN_IF_ERROR(safetensors::WriteFile(Join(writer->staging_dir(), kOptimizerFile), tensors,
                                         optimizer.metadata));

  TrainerState stamped = state;
  stamped.saved_at = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
  stamped.run.versions.emplace("prolong", kVersion);
  stamped.run.versions.emplace("torch", TORCH_VERSION);
  RETURN_IF_ERROR(WriteFileAtomically(Join(writer->staging_dir(), kTrainerStateFile),
                                      TrainerStateToJson(stamped)));

  CommitOptions commit;
  commit.keep_last = options.keep_last;
  return writer->Commit(commit);
} catch (const std::exception& e) {
  return TorchError(absl::StrCat("saving checkpoint step ", state.step, " in ", dir), e);
}

absl::StatusOr<OptimizerState> ReadOptimizerState(const std::string& checkpoint_dir,
                                                  const ParameterFilter& read,
                                                  const model::ParameterParts* parts) try {
  ASSIGN_OR_RETURN(const std::unique_ptr<safetensors::SafetensorsFile> file,
                   safetensors::SafetensorsFile::Open(Join(checkpoint_dir, kOptimizerFile)));
  OptimizerState state;
  state.metadata = file->metadata();
  for (const std::string& name : file->names()) {
    const size_t slash = name.find('/');
    if (read != nullptr && slash != std::string::npos && !read(name.substr(slash + 1))) continue;
    absl::StatusOr<Tensor> tensor = model::ToTorch(*file->Find(name));
    if (!tensor.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file->path(), ": tensor ", name, ": ", tensor.status().message()));
    }
    const std::string kind = name.substr(0, slash);
    if (parts != nullptr && slash != std::string::npos && kind != kStep) {
      const std::string parameter = name.substr(slash + 1);
      const std::vector<int64_t> whole = parts->WholeShape(parameter);
      if (!whole.empty()) {  // A tensor of no parameter is refused later, by name.
        if (tensor->sizes().vec() != whole) {
          return absl::InvalidArgumentError(absl::StrCat(
              file->path(), ": tensor ", name, " has shape [", absl::StrJoin(tensor->sizes(), ", "),
              "], the model expects [", absl::StrJoin(whole, ", "), "]"));
        }
        tensor = parts->Part(parameter, *tensor);
      }
    }
    state.tensors[name] = *std::move(tensor);
  }
  return state;
} catch (const std::exception& e) {
  return TorchError(absl::StrCat("reading ", Join(checkpoint_dir, kOptimizerFile)), e);
}

absl::Status LoadCheckpoint(const std::string& checkpoint_dir, model::LlamaForCausalLM& model,
                            AdamW& optimizer, TrainerState* state, const LoadOptions& options) try {
  if (options.verification.has_value()) {
    RETURN_IF_ERROR(VerifyCheckpoint(checkpoint_dir, *options.verification));
  }
  ASSIGN_OR_RETURN(TrainerState loaded, ReadTrainerState(checkpoint_dir));
  const std::string model_dir = Join(checkpoint_dir, kModelDir);
  const std::string config_path = Join(model_dir, "config.json");
  ASSIGN_OR_RETURN(const model::LlamaConfig config, model::ReadLlamaConfig(config_path));
  RETURN_IF_ERROR(CompareShapeKeys(config, model.config(), config_path));
  const NamedParameters parameters = model.named_parameters();
  ParameterFilter read = nullptr;
  if (options.optimizer_parameters != nullptr) {
    // A tensor of no parameter is still read, to be refused.
    read = [&](const std::string& name) {
      return parameters.find(name) == nullptr || options.optimizer_parameters(name);
    };
  }
  ASSIGN_OR_RETURN(const OptimizerState saved,
                   ReadOptimizerState(checkpoint_dir, read, options.parts));
  absl::StatusOr<std::vector<PlannedState>> plan = PlanAdamWRestore(saved, parameters, optimizer);
  if (!plan.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Join(checkpoint_dir, kOptimizerFile), ": ", plan.status().message()));
  }

  // The generators first, so that a state they refuse leaves everything as it was.
  RngState previous;
  if (options.restore_rng) {
    previous = CaptureRngState();
    if (absl::Status status = RestoreRngState(loaded.rng); !status.ok()) {
      RestoreRngState(previous).IgnoreError();
      return absl::InvalidArgumentError(
          absl::StrCat(Join(checkpoint_dir, kTrainerStateFile), ": ", status.message()));
    }
  }
  if (absl::Status status = model::LoadWeights(model, model_dir, options.parts); !status.ok()) {
    if (options.restore_rng) RestoreRngState(previous).IgnoreError();
    return status;
  }
  ApplyAdamWRestore(*std::move(plan), optimizer);
  *state = std::move(loaded);
  return absl::OkStatus();
} catch (const std::exception& e) {
  return TorchError(absl::StrCat("loading checkpoint ", checkpoint_dir), e);
}

absl::StatusOr<CheckpointRef> ResumeLatest(const std::string& dir, model::LlamaForCausalLM& model,
                                           AdamW& optimizer, TrainerState* state,
                                           Verification verification) {
  FindOptions find;
  find.verification = verification;
  find.remove_leftovers = true;
  ASSIGN_OR_RETURN(CheckpointRef latest, FindLatestValid(dir, find));
  LoadOptions load;
  load.verification = std::nullopt;
  RETURN_IF_ERROR(LoadCheckpoint(latest.path, model, optimizer, state, load));
  PROLONG_LOG(INFO) << "resumed from " << latest.path;
  return latest;
}

}  // namespace prolong::checkpoint
