// Activation checkpointing per decoder layer (LibTorch's C++ API has no
// torch.utils.checkpoint): a layer's forward runs without keeping its activations, only its
// input, and backward runs the layer again with gradients on before backpropagating through
// it. Memory then holds one [T, hidden] input per layer plus one layer's activations at a time,
// for about one more forward of compute. Under mixed precision (autocast to bfloat16) the input
// is kept in bfloat16, as FSDP's mixed precision keeps activations: half the bytes, and the
// recomputation starts from the rounded input, so its gradients are those of bfloat16 training
// rather than the forward's to the bit. Weights, gradients and the residual stream itself stay
// float32: the optimizer's updates (lr x 1e-3 of a weight) vanish below bfloat16's 8 bits.
//
// Recomputation is exact: the layer has no randomness (no dropout), and its collectives
// (context-parallel attention's all-gather and reduce-scatter) run again in the same order on
// every rank, since every rank recomputes the same layers in the same (reverse) order.
//
// Selective checkpointing (`keep_attention`) also keeps each layer's attention output and
// log-sum-exp (attention/attention_memo.h), so that the recomputation skips attention's forward:
// for long sequences most of a layer's forward time, for one more [T, heads x head_dim] tensor
// per layer. Gradients are the same to the bit.
//
// Sharded weights (fully_sharded.h) ride on the same recomputation: a layer whose LayerWeights
// are given has its weights made whole for the forward and dropped after it, made whole again
// for the recomputation, and hands the gradients it yields to the LayerWeights, which sum them
// over the shard group into the shards' .grad.
#ifndef PROLONG_TRAINER_PARALLEL_ACTIVATION_CHECKPOINTING_H_
#define PROLONG_TRAINER_PARALLEL_ACTIVATION_CHECKPOINTING_H_

#include <vector>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/model/llama.h"

namespace prolong::parallel {

// Where a checkpointed layer's weights are between uses, for weights that are not simply the
// layer's parameters (sharded weights). Every rank calls the collectives (marked) in the same
// order: each layer's forward, then the layers' backward in reverse.
class LayerWeights {
 public:
  virtual ~LayerWeights() = default;
  // Collective: the layer's parameters hold their whole values.
  virtual void Gather() = 0;
  // The parameters go back to what they hold between uses; the whole values are dropped.
  virtual void Release() = 0;
  // Collective, after Gather and a backward through the layer: the gradients of its trainable
  // parameters (layer.parameters() order; undefined for one that got none) go where the
  // optimizer finds them; then Release.
  virtual void AddGradients(const std::vector<torch::Tensor>& gradients) = 0;
};

// layer->forward(x, cos, sin, layout) as one autograd node that saves only x. Without `weights`,
// gradients reach x and every parameter of `layer` that requires grad (accumulated into their
// .grad by the engine, like any leaf); with them, x's through autograd and the parameters'
// through weights->AddGradients. `layer` (and `weights`) must live until backward has run.
torch::Tensor CheckpointedLayer(model::LlamaDecoderLayer& layer, const torch::Tensor& x,
                                const torch::Tensor& cos, const torch::Tensor& sin,
                                const attention::TokenLayout& layout, bool keep_attention = false,
                                LayerWeights* weights = nullptr);

// From now on model.forward runs every decoder layer as a CheckpointedLayer (through the
// model's LayerCall): the same arithmetic in the same order, without the layers' activations.
void ApplyActivationCheckpointing(model::LlamaForCausalLM& model, bool keep_attention);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_ACTIVATION_CHECKPOINTING_H_
