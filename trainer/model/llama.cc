#include "trainer/model/llama.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <utility>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "torch/utils.h"
#include "torch/version.h"

namespace prolong::model {
namespace {

using torch::Tensor;

torch::nn::Linear Projection(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

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

RMSNorm::RMSNorm(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

Tensor RMSNorm::forward(const Tensor& x) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // On a GPU, PyTorch's fused RMSNorm (one kernel each way, accumulating in float32; LibTorch
  // 2.8 and later) instead of the six elementwise passes over [T, hidden] below, which cost a
  // long-context layer several percent of its time. It takes x and weight of one dtype: in
  // float32 (the residual stream under autocast) it is the same arithmetic; in bf16 it rounds
  // once where Hugging Face rounds before and after the weight.
  if (x.is_cuda() && x.scalar_type() == weight.scalar_type()) {
    return at::rms_norm(x, {weight.size(0)}, weight, eps_);
  }
#endif
  const Tensor h = x.to(torch::kFloat32);
  const Tensor normalized = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * normalized.to(x.scalar_type());
}

Tensor RopeInverseFrequencies(const LlamaConfig& config) {
  const int64_t dim = config.head_dim;
  const Tensor exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / dim;
  const Tensor inv_freq = torch::pow(config.rope_theta, exponents).reciprocal();
  if (!config.rope_scaling.has_value()) return inv_freq;

  // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
  const Llama3RopeScaling& s = *config.rope_scaling;
  const double context = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = context / s.low_freq_factor;
  const double high_freq_wavelen = context / s.high_freq_factor;
  const Tensor wavelen = inv_freq.reciprocal() * (2 * M_PI);
  const Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  const Tensor smooth = (wavelen.reciprocal() * context - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  const Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  const Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(medium, smoothed, scaled);
}

RotaryEmbedding::RotaryEmbedding(const LlamaConfig& config) {
  inv_freq = register_buffer("inv_freq", RopeInverseFrequencies(config));
}

void RotaryEmbedding::Reset(const LlamaConfig& config) {
  torch::NoGradGuard no_grad;
  inv_freq.copy_(RopeInverseFrequencies(config));
}

std::pair<Tensor, Tensor> RotaryEmbedding::forward(const Tensor& position,
                                                   torch::ScalarType dtype) {
  const Tensor angles =
      position.to(inv_freq.device(), torch::kFloat32).unsqueeze(1) * inv_freq.unsqueeze(0);
  const Tensor both_halves = torch::cat({angles, angles}, -1);
  return {both_halves.cos().to(dtype), both_halves.sin().to(dtype)};
}

Tensor ApplyRotaryEmbedding(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

LlamaAttention::LlamaAttention(const LlamaConfig& config)
    : num_heads_(config.num_attention_heads),
      num_kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_dim) {
  q_proj = register_module("q_proj", Projection(config.hidden_size, num_heads_ * head_dim_));
  k_proj = register_module("k_proj", Projection(config.hidden_size, num_kv_heads_ * head_dim_));
  v_proj = register_module("v_proj", Projection(config.hidden_size, num_kv_heads_ * head_dim_));
  o_proj = register_module("o_proj", Projection(num_heads_ * head_dim_, config.hidden_size));
}

Tensor DefaultAttentionCore(const Tensor& q, const Tensor& k, const Tensor& v,
                            const attention::TokenLayout& layout, double scale) {
  return attention::DocumentMaskedAttention(q, k, v, layout, layout, scale);
}

Tensor LlamaAttention::forward(const Tensor& x, const Tensor& cos, const Tensor& sin,
                               const attention::TokenLayout& layout) {
  const int64_t tokens = x.size(0);
  const Tensor q_heads = q_proj(x).view({tokens, num_heads_, head_dim_});
  // Under autocast the projections come out in bfloat16 while x is float32: rotating in the
  // projections' dtype keeps q, k and v alike for the attention core (as transformers does).
  const Tensor cos_q = cos.to(q_heads.scalar_type()), sin_q = sin.to(q_heads.scalar_type());
  const Tensor q = ApplyRotaryEmbedding(q_heads, cos_q, sin_q);
  const Tensor k =
      ApplyRotaryEmbedding(k_proj(x).view({tokens, num_kv_heads_, head_dim_}), cos_q, sin_q);
  const Tensor v = v_proj(x).view({tokens, num_kv_heads_, head_dim_});
  const Tensor out = core_(q, k, v, layout, 1.0 / std::sqrt(double(head_dim_)));
  return o_proj(out.reshape({tokens, num_heads_ * head_dim_}));
}

LlamaMLP::LlamaMLP(const LlamaConfig& config) {
  gate_proj =
      register_module("gate_proj", Projection(config.hidden_size, config.intermediate_size));
  up_proj = register_module("up_proj", Projection(config.hidden_size, config.intermediate_size));
  down_proj =
      register_module("down_proj", Projection(config.intermediate_size, config.hidden_size));
}

Tensor LlamaMLP::forward(const Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

LlamaDecoderLayer::LlamaDecoderLayer(const LlamaConfig& config) {
  self_attn = register_module("self_attn", std::make_shared<LlamaAttention>(config));
  mlp = register_module("mlp", std::make_shared<LlamaMLP>(config));
  input_layernorm = register_module(
      "input_layernorm", std::make_shared<RMSNorm>(config.hidden_size, config.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm",
                      std::make_shared<RMSNorm>(config.hidden_size, config.rms_norm_eps));
}

Tensor LlamaDecoderLayer::forward(const Tensor& x, const Tensor& cos, const Tensor& sin,
                                  const attention::TokenLayout& layout) {
  const Tensor h = x + self_attn->forward(input_layernorm->forward(x), cos, sin, layout);
  return h + mlp->forward(post_attention_layernorm->forward(h));
}

LlamaModel::LlamaModel(const LlamaConfig& config) {
  embed_tokens =
      register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    decoder_layers_.push_back(std::make_shared<LlamaDecoderLayer>(config));
    layers->push_back(decoder_layers_.back());
  }
  norm =
      register_module("norm", std::make_shared<RMSNorm>(config.hidden_size, config.rms_norm_eps));
  rotary_emb = register_module("rotary_emb", std::make_shared<RotaryEmbedding>(config));
}

Tensor LlamaModel::forward(const Tensor& input_ids, const attention::TokenLayout& layout) {
  TORCH_CHECK(input_ids.dim() == 1 && input_ids.scalar_type() == torch::kInt64,
              "input_ids must be int64 [T], got ", input_ids.scalar_type(), " ", input_ids.sizes());
  TORCH_CHECK(
      layout.document.sizes() == input_ids.sizes() && layout.position.sizes() == input_ids.sizes(),
      "layout.document and layout.position must be [T] like input_ids ", input_ids.sizes(),
      ", got ", layout.document.sizes(), " and ", layout.position.sizes());
  Tensor h = embed_tokens(input_ids);
  const auto [cos, sin] = rotary_emb->forward(layout.position, h.scalar_type());
  for (const auto& layer : decoder_layers_) h = layer->forward(h, cos, sin, layout);
  return norm->forward(h);
}

LlamaForCausalLM::LlamaForCausalLM(const LlamaConfig& config) : config_(config) {
  const absl::Status valid = ValidateLlamaConfig(config);
  TORCH_CHECK(valid.ok(), valid.ToString());
  model = register_module("model", std::make_shared<LlamaModel>(config));
  if (!config.tie_word_embeddings) {
    lm_head = register_module("lm_head", Projection(config.hidden_size, config.vocab_size));
  }
}

Tensor LlamaForCausalLM::forward(const Tensor& input_ids, const attention::TokenLayout& layout) {
  return model->forward(input_ids, layout);
}

Tensor LlamaForCausalLM::lm_head_weight() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

Tensor LlamaForCausalLM::Logits(const Tensor& hidden, int64_t begin, int64_t end) const {
  TORCH_CHECK(0 <= begin && begin <= end && end <= hidden.size(0), "Logits: rows [", begin, ", ",
              end, ") outside the ", hidden.size(0), " hidden states");
  return torch::linear(hidden.narrow(0, begin, end - begin), lm_head_weight());
}

void LlamaForCausalLM::SetAttentionCore(const AttentionCore& core) {
  for (const auto& layer : model->decoder_layers()) layer->self_attn->set_core(core);
}

absl::Status LlamaForCausalLM::SetRopeTheta(double theta) {
  if (!std::isfinite(theta) || theta <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rope_theta must be positive and finite, got ", theta));
  }
  config_.rope_theta = theta;
  model->rotary_emb->Reset(config_);
  return absl::OkStatus();
}

void LlamaForCausalLM::InitializeWeights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters()) {
    Tensor& p = item.value();
    if (absl::EndsWith(item.key(), "norm.weight")) {
      p.fill_(1);
    } else {
      // Drawn on the CPU in float32 so that the weights do not depend on the device or dtype.
      p.copy_(torch::empty(p.sizes(), torch::kFloat32)
                  .normal_(0, config_.initializer_range, generator));
    }
  }
}

absl::StatusOr<std::shared_ptr<LlamaForCausalLM>> CreateLlama(const LlamaConfig& config,
                                                              uint64_t seed) {
  RETURN_IF_ERROR(ValidateLlamaConfig(config));
  auto model = std::make_shared<LlamaForCausalLM>(config);
  model->InitializeWeights(seed);
  return model;
}

absl::StatusOr<attention::TokenLayout> PackedLayout(const std::vector<int64_t>& cu_seqlens) {
  if (cu_seqlens.empty() || cu_seqlens[0] != 0) {
    return absl::InvalidArgumentError("cu_seqlens must start with 0");
  }
  const int64_t tokens = cu_seqlens.back();
  Tensor document = torch::empty({tokens}, torch::kInt64);
  Tensor position = torch::empty({tokens}, torch::kInt64);
  int64_t* doc = document.data_ptr<int64_t>();
  int64_t* pos = position.data_ptr<int64_t>();
  for (size_t i = 0; i + 1 < cu_seqlens.size(); ++i) {
    if (cu_seqlens[i + 1] < cu_seqlens[i]) {
      return absl::InvalidArgumentError(absl::StrCat("cu_seqlens decreases at index ", i + 1, ": ",
                                                     cu_seqlens[i], " then ", cu_seqlens[i + 1]));
    }
    for (int64_t t = cu_seqlens[i]; t < cu_seqlens[i + 1]; ++t) {
      doc[t] = static_cast<int64_t>(i);
      pos[t] = t - cu_seqlens[i];
    }
  }
  return attention::TokenLayout{document, position};
}

absl::Status LoadWeights(LlamaForCausalLM& model, const std::string& path) {
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
    if (!std::equal(view->shape.begin(), view->shape.end(), item.value().sizes().begin(),
                    item.value().sizes().end())) {
      return error(where, " has shape ", ShapeString(view->shape), ", the model expects ",
                   ShapeString(item.value().sizes()));
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
    parameter.copy_(Borrow(view, dtype));
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
