// Activation checkpointing applied to a model in place: the same values and gradients as the
// plain forward, one autograd node per layer, and selective checkpointing's kept attention.
#include "trainer/parallel/activation_checkpointing.h"

#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong::parallel {
namespace {

using model::testing::ExpectAllClose;
using model::testing::Gradients;
using torch::Tensor;

std::shared_ptr<model::LlamaForCausalLM> TinyModel() {
  return *model::CreateLlama(model::testing::TinyLlamaConfig(), 3);
}

// Packed documents (one of a single token) with random ids, each token's target the next token
// of its document.
struct Batch {
  Tensor input_ids;
  attention::TokenLayout layout;
  Tensor target_ids;
  Tensor loss_mask;  // false at each document's last token
};

Batch MakeBatch(uint64_t seed) {
  const std::vector<int64_t> cu_seqlens = {0, 1, 8, 53, 83, 96, 97, 137, 192};
  std::mt19937_64 random(seed);
  std::vector<int64_t> ids(cu_seqlens.back());
  for (int64_t& id : ids) id = std::uniform_int_distribution<int64_t>(0, 127)(random);
  Batch batch;
  batch.input_ids = torch::tensor(ids);
  batch.layout = *model::PackedLayout(cu_seqlens);
  const Tensor& document = batch.layout.document;
  batch.loss_mask =
      torch::cat({document.slice(0, 1), torch::full({1}, -1, torch::kInt64)}) == document;
  batch.target_ids = torch::roll(batch.input_ids, -1).masked_fill(~batch.loss_mask, 0);
  return batch;
}

// Summed cross-entropy of the masked targets through lm_head.
Tensor CrossEntropySum(const model::LlamaForCausalLM& model, const Tensor& hidden,
                       const Batch& batch) {
  const Tensor log_probs = model.Logits(hidden, 0, hidden.size(0)).log_softmax(-1);
  const Tensor picked = log_probs.gather(1, batch.target_ids.unsqueeze(1)).squeeze(1);
  return -picked.masked_select(batch.loss_mask).sum();
}

TEST(ActivationCheckpointingTest, GivesTheSameValuesAndGradients) {
  auto model = TinyModel();
  const Batch batch = MakeBatch(11);
  auto loss = [&](Tensor* hidden) {
    for (auto& p : model->parameters()) p.mutable_grad() = Tensor();
    *hidden = model->forward(batch.input_ids, batch.layout);
    CrossEntropySum(*model, *hidden, batch).backward();
    return Gradients(*model);
  };
  Tensor plain_hidden, checkpointed_hidden;
  const std::vector<Tensor> plain = loss(&plain_hidden);
  ApplyActivationCheckpointing(*model, /*keep_attention=*/false);
  const std::vector<Tensor> checkpointed = loss(&checkpointed_hidden);
  EXPECT_TRUE(torch::equal(plain_hidden, checkpointed_hidden));
  ExpectAllClose(checkpointed, plain, 1e-6, "gradient");
  // Every parameter got a gradient, the layers' included.
  for (const Tensor& g : checkpointed) EXPECT_GT(g.abs().max().item<double>(), 0);
}

// Selective checkpointing: the recomputation takes each layer's attention output from the
// forward instead of computing it again, and the gradients do not change by a bit.
TEST(ActivationCheckpointingTest, KeptAttentionIsNotComputedAgain) {
  // Counts the attention forwards computed.
  class Counting : public attention::PartialAttention {
   public:
    attention::AttentionResult Forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                       const attention::TokenLayout& q_layout,
                                       const attention::TokenLayout& k_layout,
                                       double scale) const override {
      ++forwards;
      return attention::BlockwisePartialAttention().Forward(q, k, v, q_layout, k_layout, scale);
    }
    attention::AttentionGrads Backward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                       const Tensor& v, const Tensor& out, const Tensor& lse,
                                       const attention::TokenLayout& q_layout,
                                       const attention::TokenLayout& k_layout,
                                       double scale) const override {
      return attention::BlockwisePartialAttention().Backward(dout, q, k, v, out, lse, q_layout,
                                                             k_layout, scale);
    }
    mutable int forwards = 0;
  };
  const Batch batch = MakeBatch(11);
  std::vector<std::vector<Tensor>> gradients;
  for (const auto& [checkpoint, keep] :
       std::vector<std::pair<bool, bool>>{{false, false}, {true, false}, {true, true}}) {
    auto model = TinyModel();
    Counting counting;
    model->SetAttentionCore([&counting](const Tensor& q, const Tensor& k, const Tensor& v,
                                        const attention::TokenLayout& layout, double scale) {
      return attention::AttendKeys(q, k, v, layout, layout, scale, counting);
    });
    if (checkpoint) ApplyActivationCheckpointing(*model, keep);
    const Tensor hidden = model->forward(batch.input_ids, batch.layout);
    CrossEntropySum(*model, hidden, batch).backward();
    // Two layers: once each, again in the recomputation unless kept.
    EXPECT_EQ(counting.forwards, checkpoint && !keep ? 4 : 2) << checkpoint << keep;
    gradients.push_back(Gradients(*model));
  }
  ExpectAllClose(gradients[1], gradients[0], 1e-6, "checkpointed gradient");
  for (size_t i = 0; i < gradients[2].size(); ++i) {
    EXPECT_TRUE(torch::equal(gradients[2][i], gradients[1][i])) << "parameter " << i;
  }
}

// The names of the autograd nodes behind `output`, with repetitions.
std::multiset<std::string> GraphNodes(const Tensor& output) {
  std::multiset<std::string> names;
  std::set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> stack = {output.grad_fn().get()};
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    names.insert(node->name());
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return names;
}

size_t CountContaining(const std::multiset<std::string>& names, const std::string& part) {
  size_t count = 0;
  for (const std::string& name : names) count += name.find(part) != std::string::npos;
  return count;
}

TEST(ActivationCheckpointingTest, KeepsNothingInsideTheLayers) {
  auto model = TinyModel();
  const Batch batch = MakeBatch(12);
  const auto plain = GraphNodes(model->forward(batch.input_ids, batch.layout));
  ApplyActivationCheckpointing(*model, /*keep_attention=*/false);
  const auto checkpointed = GraphNodes(model->forward(batch.input_ids, batch.layout));
  // Without checkpointing each layer's attention and projections are nodes holding their inputs;
  // with it, one node per layer stands for all of them.
  EXPECT_EQ(CountContaining(plain, "DocumentMaskedAttention"), 2u);
  EXPECT_EQ(CountContaining(checkpointed, "DocumentMaskedAttention"), 0u);
  EXPECT_EQ(CountContaining(checkpointed, "CheckpointFunction"), 2u);
  EXPECT_LT(checkpointed.size() * 3, plain.size());
}

}  // namespace
}  // namespace prolong::parallel
