// A checkpoint loaded for inference: resolved (a Hugging Face model directory, a training
// checkpoint, or the newest of a directory of them), every checksum verified, fingerprinted,
// and placed on its device: float32 on the CPU, bfloat16 on a GPU, in eval mode.
#ifndef PROLONG_EVALUATOR_GENERATE_INFERENCE_MODEL_H_
#define PROLONG_EVALUATOR_GENERATE_INFERENCE_MODEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "trainer/model/llama.h"

namespace prolong::evaluator::generate {

struct InferenceModel {
  std::shared_ptr<model::LlamaForCausalLM> model;
  std::string fingerprint;  // checkpoint::ModelFingerprint
  c10::Device device = c10::kCPU;
};

// `device`: cpu, cuda, or auto (cuda when this build has it and a GPU is visible). NOT_FOUND or
// DATA_LOSS naming the file for a missing or corrupt checkpoint; FAILED_PRECONDITION for cuda
// without a GPU; INVALID_ARGUMENT for another device name.
absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& checkpoint,
                                                  const std::string& device);

}  // namespace prolong::evaluator::generate

#endif  // PROLONG_EVALUATOR_GENERATE_INFERENCE_MODEL_H_
