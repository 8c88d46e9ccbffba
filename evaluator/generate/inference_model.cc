#include "evaluator/generate/inference_model.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "torch/cuda.h"
#include "trainer/checkpoint/model_source.h"
#include "trainer/model/hf_checkpoint.h"

namespace prolong::evaluator::generate {
namespace {

absl::StatusOr<c10::Device> SelectDevice(const std::string& name) {
#ifdef PROLONG_CUDA
  const bool have_gpu = torch::cuda::is_available();
#else
  const bool have_gpu = false;
#endif
  if (name == "cpu" || (name == "auto" && !have_gpu)) return c10::Device(c10::kCPU);
  if (name == "cuda" || name == "auto") {
    if (!have_gpu) {
      return absl::FailedPreconditionError(
          "device cuda: no GPU is visible, or this build has no CUDA");
    }
    return c10::Device(c10::kCUDA);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device must be cpu, cuda or auto, got \"", name, "\""));
}

}  // namespace

absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& checkpoint,
                                                  const std::string& device) {
  InferenceModel loaded;
  ASSIGN_OR_RETURN(loaded.device, SelectDevice(device));
  ASSIGN_OR_RETURN(const checkpoint::ModelSource source,
                   checkpoint::ResolveModelSource(checkpoint, checkpoint::Verification::kFull));
  ASSIGN_OR_RETURN(loaded.fingerprint, checkpoint::ModelFingerprint(source));
  absl::StatusOr<std::shared_ptr<model::LlamaForCausalLM>> model =
      model::LoadLlama(source.model_dir);
  if (!model.ok()) return Annotate(model.status(), checkpoint);
  loaded.model = *std::move(model);
  loaded.model->to(loaded.device, loaded.device.is_cuda() ? torch::kBFloat16 : torch::kFloat32);
  loaded.model->eval();
  return loaded;
}

}  // namespace prolong::evaluator::generate
