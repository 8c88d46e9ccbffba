#include "trainer/parallel/activation_checkpointing.h"

#include <optional>
#include <vector>

#include "torch/autograd.h"
#include "trainer/attention/attention_memo.h"
#include "trainer/parallel/autocast_guard.h"

namespace prolong::parallel {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // `parameters` are inputs only so that autograd connects them to this node; forward reads
  // them through the layer. With `weights` there are none: the gradients go to `weights`.
  static Tensor forward(AutogradContext* ctx, const Tensor& x, at::TensorList parameters,
                        const Tensor& cos, const Tensor& sin, const Tensor& document,
                        const Tensor& position, model::LlamaDecoderLayer* layer,
                        bool keep_attention, LayerWeights* weights) {
    // Recomputation must cast as this forward does (torch.utils.checkpoint does the same).
    const AutocastState autocast = CurrentAutocast(x.device().type());
    ctx->saved_data["autocast"] = autocast.enabled;
    ctx->saved_data["autocast_dtype"] = static_cast<int64_t>(autocast.dtype);
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["parameters"] = static_cast<int64_t>(parameters.size());
    ctx->saved_data["keep_attention"] = keep_attention;
    ctx->saved_data["weights"] = reinterpret_cast<int64_t>(weights);
    attention::AttentionMemo memo;
    Tensor out;
    {
      std::optional<attention::AttentionMemo::Scope> record;
      if (keep_attention) record.emplace(memo, attention::AttentionMemo::Mode::kRecord);
      if (weights != nullptr) weights->Gather();
      out = layer->forward(x, cos, sin, {document, position});
      if (weights != nullptr) weights->Release();
    }
    // x, cos, sin, document, position, then what attention recorded. Under mixed precision x
    // is kept in the autocast dtype (half the bytes of the float32 residual stream, as FSDP's
    // mixed precision keeps activations) and turned back for the recomputation.
    ctx->saved_data["input_dtype"] = static_cast<int64_t>(x.scalar_type());
    const bool narrow = autocast.enabled && x.is_floating_point() &&
                        c10::elementSize(autocast.dtype) < c10::elementSize(x.scalar_type());
    std::vector<Tensor> saved = {narrow ? x.to(autocast.dtype) : x, cos, sin, document, position};
    saved.insert(saved.end(), memo.tensors.begin(), memo.tensors.end());
    ctx->save_for_backward(saved);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<model::LlamaDecoderLayer*>(ctx->saved_data["layer"].toInt());
    const int64_t parameter_count = ctx->saved_data["parameters"].toInt();
    auto* weights = reinterpret_cast<LayerWeights*>(ctx->saved_data["weights"].toInt());
    if (weights != nullptr) weights->Gather();
    const auto input_dtype = static_cast<c10::ScalarType>(ctx->saved_data["input_dtype"].toInt());
    variable_list inputs = {saved[0].detach().to(input_dtype).requires_grad_(true)};
    for (const Tensor& p : layer->parameters()) {
      if (p.requires_grad()) inputs.push_back(p);
    }
    TORCH_CHECK(weights != nullptr || static_cast<int64_t>(inputs.size()) == parameter_count + 1,
                "a checkpointed layer's trainable parameters changed between forward and backward");
    attention::AttentionMemo memo;
    memo.tensors.assign(saved.begin() + 5, saved.end());
    Tensor out;
    {
      torch::AutoGradMode enable_grad(true);
      const AutocastGuard autocast(
          saved[0].device().type(), ctx->saved_data["autocast"].toBool(),
          static_cast<c10::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      std::optional<attention::AttentionMemo::Scope> replay;
      if (ctx->saved_data["keep_attention"].toBool()) {
        replay.emplace(memo, attention::AttentionMemo::Mode::kReplay);
      }
      out = layer->forward(inputs[0], saved[1], saved[2], {saved[3], saved[4]});
    }
    variable_list grads = torch::autograd::grad({out}, inputs, {grad_outputs[0]},
                                                /*retain_graph=*/false, /*create_graph=*/false,
                                                /*allow_unused=*/true);
    if (weights != nullptr) {
      weights->AddGradients(variable_list(grads.begin() + 1, grads.end()));
      grads.resize(1);
    }
    // x, each parameter input, then nothing for cos, sin, document, position, the layer, the
    // flag and the weights.
    grads.resize(grads.size() + 7);
    return grads;
  }
};

}  // namespace

Tensor CheckpointedLayer(model::LlamaDecoderLayer& layer, const Tensor& x, const Tensor& cos,
                         const Tensor& sin, const attention::TokenLayout& layout,
                         bool keep_attention, LayerWeights* weights) {
  std::vector<Tensor> parameters;
  if (weights == nullptr) {
    for (const Tensor& p : layer.parameters()) {
      if (p.requires_grad()) parameters.push_back(p);
    }
  }
  return CheckpointFunction::apply(x, at::TensorList(parameters), cos, sin, layout.document,
                                   layout.position, &layer, keep_attention, weights);
}

void ApplyActivationCheckpointing(model::LlamaForCausalLM& model, bool keep_attention) {
  model.SetLayerCall([keep_attention](model::LlamaDecoderLayer& layer, const Tensor& x,
                                      const Tensor& cos, const Tensor& sin,
                                      const attention::TokenLayout& layout) {
    return CheckpointedLayer(layer, x, cos, sin, layout, keep_attention);
  });
}

}  // namespace prolong::parallel
