#include "trainer/model/llama.h"

#include <cmath>
#include <utility>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "torch/version.h"

namespace prolong::model {
namespace {

using torch::Tensor;

torch::nn::Linear Projection(int64_t in, int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
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

Tensor PlainLayerCall(LlamaDecoderLayer& layer, const Tensor& x, const Tensor& cos,
                      const Tensor& sin, const attention::TokenLayout& layout) {
  return layer.forward(x, cos, sin, layout);
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
  for (const auto& layer : decoder_layers_) h = layer_call_(*layer, h, cos, sin, layout);
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

void LlamaForCausalLM::SetLayerCall(const LayerCall& call) { model->set_layer_call(call); }

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

}  // namespace prolong::model
