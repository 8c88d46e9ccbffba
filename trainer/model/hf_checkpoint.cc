#include "trainer/model/hf_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace prolong::model {
namespace {

using torch::Tensor;

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<std::string> TorchDTypeName(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return "float32";
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot save a model as ", c10::toString(dtype), " (float32, bfloat16 or float16)"));
  }
}

bool IsFloat(safetensors::DType dtype) {
  using safetensors::DType;
  return dtype == DType::kF32 || dtype == DType::kF64 || dtype == DType::kF16 ||
         dtype == DType::kBF16;
}

// The view's data as a tensor without a copy when it is aligned for its dtype (always, for
// files the reference writer made); a copy otherwise. Valid while the view's bytes live.
Tensor Borrow(const safetensors::TensorView& view, torch::ScalarType dtype) {
  void* data = const_cast<char*>(view.data.data());
  if (reinterpret_cast<uintptr_t>(data) % safetensors::DTypeSize(view.dtype) == 0) {
    return torch::from_blob(data, view.shape, torch::TensorOptions().dtype(dtype));
  }
  Tensor copy = torch::empty(view.shape, torch::TensorOptions().dtype(dtype));
  std::memcpy(copy.data_ptr(), view.data.data(), view.data.size());
  return copy;
}

}  // namespace

absl::Status LoadWeights(LlamaForCausalLM& model, const std::string& path,
                         const ParameterParts* parts) {
  ASSIGN_OR_RETURN(const std::unique_ptr<safetensors::Checkpoint> checkpoint,
                   safetensors::Checkpoint::Open(path));
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parts...));
  };
  const bool tied = model.config().tie_word_embeddings;
  const auto parameters = model.named_parameters();
  std::set<std::string> expected;
  for (const auto& item : parameters) {
    const std::string& name = item.key();
    expected.insert(name);
    const safetensors::TensorView* view = checkpoint->Find(name);
    if (view == nullptr) {
      return error("missing tensor ", name,
                   name == "lm_head.weight" ? " (config.json does not tie word embeddings)" : "");
    }
    const std::string where = absl::StrCat("tensor ", name, " (in ", checkpoint->FileOf(name), ")");
    const std::vector<int64_t> shape =
        parts != nullptr ? parts->WholeShape(name) : item.value().sizes().vec();
    if (!std::equal(view->shape.begin(), view->shape.end(), shape.begin(), shape.end())) {
      return error(where, " has shape ", ShapeString(view->shape), ", the model expects ",
                   ShapeString(shape));
    }
    if (!IsFloat(view->dtype)) {
      return error(where, " has dtype ", safetensors::DTypeName(view->dtype),
                   ", not a floating-point dtype");
    }
  }
  for (const std::string& name : checkpoint->names()) {
    if (expected.count(name) != 0 || absl::EndsWith(name, "rotary_emb.inv_freq")) continue;
    return error("unexpected tensor ", name, " (in ", checkpoint->FileOf(name), ")",
                 name == "lm_head.weight" && tied
                     ? ": config.json ties word embeddings, so the model has no lm_head.weight"
                     : "");
  }

  torch::NoGradGuard no_grad;
  for (const auto& item : parameters) {
    const safetensors::TensorView& view = *checkpoint->Find(item.key());
    ASSIGN_OR_RETURN(const torch::ScalarType dtype, TorchDType(view.dtype));
    Tensor parameter = item.value();
    const Tensor whole = Borrow(view, dtype);
    parameter.copy_(parts != nullptr ? parts->Part(item.key(), whole) : whole);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<LlamaForCausalLM>> LoadLlama(const std::string& dir) {
  ASSIGN_OR_RETURN(const LlamaConfig config,
                   ReadLlamaConfig((std::filesystem::path(dir) / "config.json").string()));
  auto model = std::make_shared<LlamaForCausalLM>(config);
  RETURN_IF_ERROR(LoadWeights(*model, dir));
  return model;
}

absl::Status SaveLlama(const LlamaForCausalLM& model, const std::string& dir,
                       const SaveOptions& options) {
  ASSIGN_OR_RETURN(const std::string dtype_name, TorchDTypeName(options.dtype));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat(dir, ": ", ec.message()));

  // For float32 on the CPU these share the parameters' storage: no copy.
  std::vector<Tensor> host;
  std::vector<safetensors::NamedTensor> tensors;
  for (const auto& item : model.named_parameters()) {
    host.push_back(item.value().detach().to(torch::kCPU, options.dtype).contiguous());
    ASSIGN_OR_RETURN(safetensors::TensorView view, ViewOf(host.back()));
    tensors.push_back({item.key(), std::move(view)});
  }
  RETURN_IF_ERROR(
      safetensors::WriteCheckpoint(dir, tensors, options.max_shard_bytes, {{"format", "pt"}})
          .status());
  return WriteLlamaConfig((std::filesystem::path(dir) / "config.json").string(), model.config(),
                          dtype_name);
}

absl::StatusOr<torch::ScalarType> TorchDType(safetensors::DType dtype) {
  using safetensors::DType;
  switch (dtype) {
    case DType::kBool:
      return torch::kBool;
    case DType::kU8:
      return torch::kUInt8;
    case DType::kI8:
      return torch::kInt8;
    case DType::kI16:
      return torch::kInt16;
    case DType::kF16:
      return torch::kFloat16;
    case DType::kBF16:
      return torch::kBFloat16;
    case DType::kI32:
      return torch::kInt32;
    case DType::kF32:
      return torch::kFloat32;
    case DType::kF64:
      return torch::kFloat64;
    case DType::kI64:
      return torch::kInt64;
    case DType::kU16:
    case DType::kU32:
    case DType::kU64:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("safetensors dtype ", safetensors::DTypeName(dtype), " has no LibTorch dtype"));
}

absl::StatusOr<safetensors::DType> SafetensorsDType(torch::ScalarType dtype) {
  using safetensors::DType;
  switch (dtype) {
    case torch::kBool:
      return DType::kBool;
    case torch::kUInt8:
      return DType::kU8;
    case torch::kInt8:
      return DType::kI8;
    case torch::kInt16:
      return DType::kI16;
    case torch::kFloat16:
      return DType::kF16;
    case torch::kBFloat16:
      return DType::kBF16;
    case torch::kInt32:
      return DType::kI32;
    case torch::kFloat32:
      return DType::kF32;
    case torch::kFloat64:
      return DType::kF64;
    case torch::kInt64:
      return DType::kI64;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("LibTorch dtype ", c10::toString(dtype), " has no safetensors dtype"));
  }
}

absl::StatusOr<Tensor> ToTorch(const safetensors::TensorView& view) {
  ASSIGN_OR_RETURN(const torch::ScalarType dtype, TorchDType(view.dtype));
  Tensor tensor = torch::empty(view.shape, torch::TensorOptions().dtype(dtype));
  if (!view.data.empty()) std::memcpy(tensor.data_ptr(), view.data.data(), view.data.size());
  return tensor;
}

absl::StatusOr<safetensors::TensorView> ViewOf(const Tensor& tensor) {
  if (!tensor.device().is_cpu() || !tensor.is_contiguous()) {
    return absl::InvalidArgumentError("ViewOf needs a contiguous CPU tensor");
  }
  ASSIGN_OR_RETURN(const safetensors::DType dtype, SafetensorsDType(tensor.scalar_type()));
  safetensors::TensorView view;
  view.dtype = dtype;
  view.shape.assign(tensor.sizes().begin(), tensor.sizes().end());
  view.data = absl::string_view(static_cast<const char*>(tensor.data_ptr()), tensor.nbytes());
  return view;
}

}  // namespace prolong::model
