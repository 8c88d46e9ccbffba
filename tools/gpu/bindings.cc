// The trainer core as a Python extension, for tools/gpu/check.py to compare with PyTorch and
// transformers on a GPU machine (built there with torch.utils.cpp_extension).

#include <torch/extension.h>

#include <chrono>
#include <stdexcept>
#include <string>

#include "absl/status/status.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/fused_attention.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/model/llama_config.h"
#include "trainer/train/autocast_guard.h"

namespace {

namespace attention = prolong::attention;
namespace model = prolong::model;

template <typename T>
T OrThrow(absl::StatusOr<T> value) {
  if (!value.ok()) throw std::runtime_error(std::string(value.status().message()));
  return *std::move(value);
}

void OrThrow(const absl::Status& status) {
  if (!status.ok()) throw std::runtime_error(std::string(status.message()));
}

py::tuple AttentionForward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& document, const torch::Tensor& position,
                           double scale) {
  const attention::AttentionResult result = attention::BlockwiseAttentionForward(
      q, k, v, {document, position}, {document, position}, scale);
  return py::make_tuple(result.out, result.lse);
}

py::tuple AttentionBackward(const torch::Tensor& dout, const torch::Tensor& q,
                            const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& out, const torch::Tensor& lse,
                            const torch::Tensor& document, const torch::Tensor& position,
                            double scale) {
  const attention::AttentionGrads grads = attention::BlockwiseAttentionBackward(
      dout, q, k, v, out, lse, {document, position}, {document, position}, scale);
  return py::make_tuple(grads.dq, grads.dk, grads.dv);
}

#ifdef PROLONG_CUDA
torch::Tensor FusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& document, const torch::Tensor& position,
                             double scale) {
  return attention::FusedDocumentAttention(q, k, v, {document, position}, scale);
}
#endif

// Logits (float32, on the CPU) of a packed sequence through a checkpoint directory's model, with
// `precision` fp32, bf16 (bf16 weights) or autocast (float32 weights, the trainer's bf16 mixed
// precision).
torch::Tensor LlamaLogits(const std::string& dir, const torch::Tensor& input_ids,
                          const torch::Tensor& document, const torch::Tensor& position,
                          const std::string& device, const std::string& precision, bool fused) {
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::LoadLlama(dir));
  const torch::Device target(device);
  llama->to(target, precision == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  const prolong::train::AutocastGuard autocast(target.type(), precision == "autocast");
#ifdef PROLONG_CUDA
  if (fused) llama->SetAttentionCore(attention::FusedDocumentAttention);
#else
  if (fused) throw std::runtime_error("the fused core needs a CUDA build");
#endif
  torch::NoGradGuard no_grad;
  const torch::Tensor hidden =
      llama->forward(input_ids.to(target), {document.to(target), position.to(target)});
  return llama->Logits(hidden, 0, hidden.size(0)).to(torch::kFloat32).cpu();
}

void SaveRandomLlama(const std::string& config_path, const std::string& dir, int64_t seed) {
  const model::LlamaConfig config = OrThrow(model::ReadLlamaConfig(config_path));
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::CreateLlama(config, seed));
  OrThrow(model::SaveLlama(*llama, dir, {}));
}

#ifdef PROLONG_CUDA
// One rank of NCCL: every collective on a GPU tensor must give back its input.
py::dict NcclCheck() {
  py::dict result;
  auto store = OrThrow(prolong::comm::ServeStore("127.0.0.1"));
  prolong::comm::RendezvousOptions options;
  options.store_address = store->address();
  prolong::comm::ProcessGroups groups = OrThrow(prolong::comm::JoinNccl(options));
  const torch::Tensor x =
      torch::arange(12, torch::TensorOptions(torch::kCUDA).dtype(torch::kFloat32)).view({4, 3});
  torch::Tensor reduced = x.clone();
  groups.world->AllReduceSum(reduced);
  result["all_reduce"] = torch::equal(reduced, x);
  result["all_gather"] = torch::equal(groups.cp->AllGather(x), x);
  result["reduce_scatter"] = torch::equal(groups.dp->ReduceScatterSum(x), x);
  // The trainer's CPU tensors (counts, flags, the loss) are staged through the GPU and back.
  const torch::Tensor counts = torch::tensor({3, 5}, torch::kInt64);
  const torch::Tensor gathered = groups.world->AllGather(counts);
  result["cpu_all_gather"] = gathered.device().is_cpu() && torch::equal(gathered, counts);
  torch::Tensor loss = torch::tensor({2.5}, torch::kFloat64);
  groups.world->AllReduceSum(loss);
  result["cpu_all_reduce"] = loss.device().is_cpu() && loss.item<double>() == 2.5;
  groups.world->Barrier();
  result["barrier"] = true;
  return result;
}

// Seconds per forward + backward of one decoder layer with `config_path`'s shape, bf16, on
// `tokens` tokens cut into documents of `document_tokens`, through the fused core.
double LayerSeconds(const std::string& config_path, int64_t tokens, int64_t document_tokens,
                    int iterations) {
  const model::LlamaConfig config = OrThrow(model::ReadLlamaConfig(config_path));
  auto layer = std::make_shared<model::LlamaDecoderLayer>(config);
  layer->self_attn->set_core(attention::FusedDocumentAttention);
  const torch::TensorOptions cuda = torch::TensorOptions(torch::kCUDA);
  layer->to(torch::kCUDA, torch::kBFloat16);
  model::RotaryEmbedding rope(config);
  rope.to(torch::kCUDA);
  const torch::Tensor index = torch::arange(tokens, cuda.dtype(torch::kInt64));
  const attention::TokenLayout layout{torch::div(index, document_tokens, "floor"),
                                      torch::remainder(index, document_tokens)};
  const auto [cos, sin] = rope.forward(layout.position, torch::kBFloat16);
  const torch::Tensor x =
      torch::randn({tokens, config.hidden_size}, cuda.dtype(torch::kBFloat16)).requires_grad_();
  const torch::Tensor grad = torch::randn_like(x);
  // The autograd engine runs its own threads; Python's lock must not be held meanwhile.
  py::gil_scoped_release no_gil;
  auto step = [&] { layer->forward(x, cos, sin, layout).backward(grad); };
  for (int i = 0; i < 2; ++i) step();
  torch::cuda::synchronize();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) step();
  torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
         iterations;
}
#endif  // PROLONG_CUDA

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attention_forward", &AttentionForward);
  m.def("attention_backward", &AttentionBackward);
  m.def("llama_logits", &LlamaLogits);
  m.def("save_random_llama", &SaveRandomLlama);
#ifdef PROLONG_CUDA
  m.def("fused_attention", &FusedAttention);
  m.def("nccl_check", &NcclCheck);
  m.def("layer_seconds", &LayerSeconds);
#endif
}
