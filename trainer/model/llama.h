// Llama (2, 3, 3.1) as LibTorch modules whose parameter names are Hugging Face's, so a
// checkpoint saved here is a `transformers` LlamaForCausalLM checkpoint and back (reading and
// writing them: hf_checkpoint.h).
//
// The model runs one packed sequence of T tokens: several documents laid end to end, each
// attending only to itself (document masking), with explicit per-token positions for RoPE.
// Batches are packed sequences concatenated with distinct document ids. Forward stops at the
// final norm; logits are computed by the caller for slices of positions (Logits), so the loss
// can run lm_head and cross-entropy in blocks and T x vocab logits never exist at once.
//
// Parameters, as named_parameters() gives them:
//   model.embed_tokens.weight                          [vocab, hidden]
//   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   q, o: heads * head_dim; k, v: kv_heads
//   model.layers.{i}.mlp.{gate,up,down}_proj.weight
//   model.layers.{i}.{input,post_attention}_layernorm.weight
//   model.norm.weight
//   lm_head.weight                                     absent when tie_word_embeddings
// The RoPE inverse frequencies are the buffer model.rotary_emb.inv_freq, derived from the
// config and never saved (as in Hugging Face).
//
// Thread-safety: a model is a torch::nn::Module: not safe to mutate (load, SetRopeTheta,
// optimizer steps) concurrently with any other use.
#ifndef PROLONG_TRAINER_MODEL_LLAMA_H_
#define PROLONG_TRAINER_MODEL_LLAMA_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/nn/module.h"
#include "torch/nn/modules/container/modulelist.h"
#include "torch/nn/modules/embedding.h"
#include "torch/nn/modules/linear.h"
#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/model/llama_config.h"

namespace prolong::model {

// Root-mean-square norm computed in float32 and cast back before the weight, as Hugging Face
// does, so bf16 activations round where theirs do; on a GPU, PyTorch's fused kernel where x and
// the weight share a dtype (see forward).
class RMSNorm : public torch::nn::Module {
 public:
  RMSNorm(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;

 private:
  double eps_;
};

// RoPE inverse frequencies, float32 [head_dim / 2]: rope_theta^(-2i / head_dim), then Llama
// 3.1 scaling if the config has it. Computed in float32 like Hugging Face, so the angles (and
// their rounding at long positions) match a model trained there.
torch::Tensor RopeInverseFrequencies(const LlamaConfig& config);

// cos and sin, [T, head_dim] in `dtype`, of the angles position * inv_freq; the two halves of
// the head dimension share frequencies (Hugging Face's layout).
class RotaryEmbedding : public torch::nn::Module {
 public:
  explicit RotaryEmbedding(const LlamaConfig& config);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& position,
                                                  torch::ScalarType dtype);
  // Recomputes inv_freq (on its current device) for a changed config.
  void Reset(const LlamaConfig& config);

  torch::Tensor inv_freq;
};

// x [T, heads, head_dim] rotated by cos, sin [T, head_dim] with Hugging Face's rotate_half:
// dimension i pairs with i + head_dim / 2 (not interleaved pairs).
torch::Tensor ApplyRotaryEmbedding(const torch::Tensor& x, const torch::Tensor& cos,
                                   const torch::Tensor& sin);

// The attention core: q [T, Hq, D] and k, v [T, Hkv, D] (after RoPE), the tokens' documents
// and positions, the softmax scale -> [T, Hq, D]. Parallelism and devices plug in here: context
// parallelism gathers keys from other ranks, a GPU uses fused kernels.
using AttentionCore = std::function<torch::Tensor(
    const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
    const attention::TokenLayout& layout, double scale)>;

// attention::DocumentMaskedAttention: blockwise, any device, the default.
torch::Tensor DefaultAttentionCore(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const attention::TokenLayout& layout,
                                   double scale);

// Grouped-query self-attention around an AttentionCore.
class LlamaAttention : public torch::nn::Module {
 public:
  explicit LlamaAttention(const LlamaConfig& config);
  void set_core(AttentionCore core) { core_ = std::move(core); }
  // x [T, hidden]; cos, sin [T, head_dim].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const attention::TokenLayout& layout);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t num_heads_;
  int64_t num_kv_heads_;
  int64_t head_dim_;
  AttentionCore core_ = DefaultAttentionCore;
};

// down_proj(silu(gate_proj(x)) * up_proj(x)).
class LlamaMLP : public torch::nn::Module {
 public:
  explicit LlamaMLP(const LlamaConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};

// Pre-norm residual block: x + attn(norm(x)), then h + mlp(norm(h)).
class LlamaDecoderLayer : public torch::nn::Module {
 public:
  explicit LlamaDecoderLayer(const LlamaConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const attention::TokenLayout& layout);

  std::shared_ptr<LlamaAttention> self_attn;
  std::shared_ptr<LlamaMLP> mlp;
  std::shared_ptr<RMSNorm> input_layernorm;
  std::shared_ptr<RMSNorm> post_attention_layernorm;
};

// How LlamaModel::forward runs each decoder layer: layer.forward(x, cos, sin, layout) by
// default. Parallelism plugs in here as it does through AttentionCore: activation
// checkpointing (trainer/parallel/activation_checkpointing.h) runs the layer without keeping its
// activations.
using LayerCall = std::function<torch::Tensor(LlamaDecoderLayer& layer, const torch::Tensor& x,
                                              const torch::Tensor& cos, const torch::Tensor& sin,
                                              const attention::TokenLayout& layout)>;

// layer.forward(x, cos, sin, layout): the default LayerCall.
torch::Tensor PlainLayerCall(LlamaDecoderLayer& layer, const torch::Tensor& x,
                             const torch::Tensor& cos, const torch::Tensor& sin,
                             const attention::TokenLayout& layout);

// Embeddings, decoder layers and final norm (Hugging Face's LlamaModel).
class LlamaModel : public torch::nn::Module {
 public:
  explicit LlamaModel(const LlamaConfig& config);
  // See LlamaForCausalLM::forward.
  torch::Tensor forward(const torch::Tensor& input_ids, const attention::TokenLayout& layout);
  void set_layer_call(LayerCall call) { layer_call_ = std::move(call); }

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::shared_ptr<RMSNorm> norm;
  std::shared_ptr<RotaryEmbedding> rotary_emb;

  const std::vector<std::shared_ptr<LlamaDecoderLayer>>& decoder_layers() const {
    return decoder_layers_;
  }

 private:
  std::vector<std::shared_ptr<LlamaDecoderLayer>> decoder_layers_;
  LayerCall layer_call_ = PlainLayerCall;
};

class LlamaForCausalLM : public torch::nn::Module {
 public:
  // `config` must pass ValidateLlamaConfig (checked: throws c10::Error otherwise). Weights are
  // LibTorch's default initialization until InitializeWeights or LoadWeights; CreateLlama does
  // both steps for a config from outside.
  explicit LlamaForCausalLM(const LlamaConfig& config);

  const LlamaConfig& config() const { return config_; }

  // input_ids int64 [T]; layout.document int64 [T] says which document each token belongs to
  // and layout.position int64 [T] its position in that document: the RoPE position id, and
  // the causal order (a token sees the tokens of its document at positions <= its own).
  // Returns the final norm's output, [T, hidden].
  torch::Tensor forward(const torch::Tensor& input_ids, const attention::TokenLayout& layout);

  // Logits of hidden-state rows [begin, end): [end - begin, vocab].
  torch::Tensor Logits(const torch::Tensor& hidden, int64_t begin, int64_t end) const;
  // lm_head.weight, or model.embed_tokens.weight when tied.
  torch::Tensor lm_head_weight() const;

  // Changes RoPE theta in place (ProLong raises it between stages); the config follows, so a
  // later save records it. INVALID_ARGUMENT unless positive and finite.
  absl::Status SetRopeTheta(double theta);

  // Every layer's attention core (DefaultAttentionCore until set).
  void SetAttentionCore(const AttentionCore& core);
  // How every decoder layer is run (PlainLayerCall until set).
  void SetLayerCall(const LayerCall& call);

  // Hugging Face's initialization: every linear and embedding weight ~ N(0, initializer_range),
  // norm weights 1. The same seed gives the same weights on any device.
  void InitializeWeights(uint64_t seed);

  std::shared_ptr<LlamaModel> model;
  torch::nn::Linear lm_head{nullptr};  // null when tied

 private:
  LlamaConfig config_;
};

// Validates `config`, builds the model on the CPU in float32 and initializes it with `seed`.
// INVALID_ARGUMENT naming the config key.
absl::StatusOr<std::shared_ptr<LlamaForCausalLM>> CreateLlama(const LlamaConfig& config,
                                                              uint64_t seed);

// The layout of a packed sequence whose documents are [cu_seqlens[i], cu_seqlens[i + 1]):
// document i, positions restarting at 0. cu_seqlens starts at 0 and never decreases (empty
// documents are allowed); INVALID_ARGUMENT otherwise.
absl::StatusOr<attention::TokenLayout> PackedLayout(const std::vector<int64_t>& cu_seqlens);

}  // namespace prolong::model

#endif  // PROLONG_TRAINER_MODEL_LLAMA_H_
