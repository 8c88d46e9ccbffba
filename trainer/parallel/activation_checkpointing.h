// Activation checkpointing per decoder layer (LibTorch's C++ API has no
// torch.utils.checkpoint): a layer's forward runs without keeping its activations, only its
// input, and backward runs the layer again with gradients on before backpropagating through
// it. Memory then holds one [T, hidden] input per layer plus one layer's activations at a time,
// for about one more forward of compute.
//
// Recomputation is exact: the layer has no randomness (no dropout), and its collectives
// (context-parallel attention's all-gather and reduce-scatter) run again in the same order on
// every rank, since every rank recomputes the same layers in the same (reverse) order.
//
// Selective checkpointing (`keep_attention`) also keeps each layer's attention output and
// log-sum-exp (attention/attention_memo.h), so that the recomputation skips attention's forward:
// for long sequences most of a layer's forward time, for one more [T, heads x head_dim] tensor
// per layer. Gradients are the same to the bit.
#ifndef PROLONG_TRAINER_PARALLEL_ACTIVATION_CHECKPOINTING_H_
#define PROLONG_TRAINER_PARALLEL_ACTIVATION_CHECKPOINTING_H_

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/model/llama.h"

namespace prolong::parallel {

// layer->forward(x, cos, sin, layout) as one autograd node that saves only x: gradients reach x
// and every parameter of `layer` that requires grad (accumulated into their .grad by the
// engine, like any leaf). `layer` must live until backward has run.
torch::Tensor CheckpointedLayer(model::LlamaDecoderLayer& layer, const torch::Tensor& x,
                                const torch::Tensor& cos, const torch::Tensor& sin,
                                const attention::TokenLayout& layout, bool keep_attention = false);

// From now on model.forward runs every decoder layer as a CheckpointedLayer (through the
// model's LayerCall): the same arithmetic in the same order, without the layers' activations.
void ApplyActivationCheckpointing(model::LlamaForCausalLM& model, bool keep_attention);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_ACTIVATION_CHECKPOINTING_H_
