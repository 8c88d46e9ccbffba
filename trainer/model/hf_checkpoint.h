// Hugging Face checkpoints of a Llama: model directories (config.json and safetensors weights,
// one file or sharded with an index) read into and written from LlamaForCausalLM, and the
// mapping between safetensors and LibTorch dtypes.
#ifndef PROLONG_TRAINER_MODEL_HF_CHECKPOINT_H_
#define PROLONG_TRAINER_MODEL_HF_CHECKPOINT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/types.h"
#include "trainer/model/llama.h"
#include "trainer/model/parameter_parts.h"
#include "trainer/model/safetensors.h"

namespace prolong::model {

// Copies a checkpoint (a .safetensors file, an index JSON, or a directory with either) into the
// model's parameters, converting float dtypes to the parameters' dtype. Everything is checked
// before anything is copied, so on error the model is unchanged: a missing tensor, a shape
// mismatch (both shapes given), a non-float dtype or an unexpected tensor is INVALID_ARGUMENT
// naming the tensor. Tensors named *.rotary_emb.inv_freq, which older checkpoints carry, are
// derived buffers and ignored. With `parts`, each parameter holds only its part: the
// checkpoint's tensors must have the whole shapes, and each parameter receives its part.
absl::Status LoadWeights(LlamaForCausalLM& model, const std::string& path,
                         const ParameterParts* parts = nullptr);

// A model from a Hugging Face model directory: config.json and the weights.
absl::StatusOr<std::shared_ptr<LlamaForCausalLM>> LoadLlama(const std::string& dir);

struct SaveOptions {
  // Hugging Face's default max_shard_size ("5GB"), in tensor data bytes.
  int64_t max_shard_bytes = 5'000'000'000;
  // kFloat32, kBFloat16 or kFloat16; config.json's torch_dtype says which.
  torch::ScalarType dtype = torch::kFloat32;
};

// Writes a Hugging Face model directory (created if needed): the weights (see
// safetensors::WriteCheckpoint; metadata {"format": "pt"}), then config.json.
absl::Status SaveLlama(const LlamaForCausalLM& model, const std::string& dir,
                       const SaveOptions& options = {});

// Between safetensors views and LibTorch tensors. U16, U32 and U64 have no LibTorch dtype.
absl::StatusOr<torch::ScalarType> TorchDType(safetensors::DType dtype);
absl::StatusOr<safetensors::DType> SafetensorsDType(torch::ScalarType dtype);
// A CPU tensor holding a copy of the view's data.
absl::StatusOr<torch::Tensor> ToTorch(const safetensors::TensorView& view);
// A view of a contiguous CPU tensor's bytes, valid while the tensor's storage lives.
absl::StatusOr<safetensors::TensorView> ViewOf(const torch::Tensor& tensor);

}  // namespace prolong::model

#endif  // PROLONG_TRAINER_MODEL_HF_CHECKPOINT_H_
