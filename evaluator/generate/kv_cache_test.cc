#include "evaluator/generate/kv_cache.h"

#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong::evaluator::generate {
namespace {

using torch::Tensor;

constexpr uint64_t kSeed = 21;

std::vector<int64_t> RandomIds(int64_t length, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<int64_t> ids(length);
  for (int64_t& id : ids) id = std::uniform_int_distribution<int64_t>(0, 127)(random);
  return ids;
}

// The last position's logits of `ids` run as one document through a model without a cache.
Tensor FullForwardLastLogits(model::LlamaForCausalLM& plain, const std::vector<int64_t>& ids) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(ids.size());
  const Tensor hidden =
      plain.forward(torch::tensor(ids), {torch::zeros({n}, torch::kInt64), torch::arange(n)});
  return plain.Logits(hidden, n - 1, n)[0];
}

TEST(KvCacheTest, HoldsTwoTimesLayersTimesKvHeadsTimesHeadDimValuesPerToken) {
  const model::LlamaConfig config = model::testing::TinyLlamaConfig();
  // 2 layers, 2 kv heads of 16: keys and values.
  EXPECT_EQ(KvCache::ValuesPerToken(config), 2 * 2 * 2 * 16);
  const KvCache cache(config, /*slots=*/3, /*capacity=*/17, torch::kCPU, torch::kFloat32);
  EXPECT_EQ(cache.bytes(), 3 * 17 * KvCache::ValuesPerToken(config) * 4);
  const KvCache half(config, 3, 17, torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(half.bytes(), cache.bytes() / 2);
}

// Chunked prefill of three prompts, then decoding steps of all of them and of some: at every
// step each slot's logits equal a full forward of its whole sequence.
TEST(KvCacheTest, EveryStepsLogitsEqualAFullForward) {
  const model::LlamaConfig config = model::testing::TinyLlamaConfig();
  auto cached = *model::CreateLlama(config, kSeed);
  auto plain = *model::CreateLlama(config, kSeed);
  std::vector<std::vector<int64_t>> sequences = {RandomIds(5, 1), RandomIds(13, 2),
                                                 RandomIds(30, 3)};
  KvCache cache(config, 3, 64, torch::kCPU, torch::kFloat32);
  cache.Attach(*cached);
  torch::NoGradGuard no_grad;
  double worst = 0;
  auto compare = [&](const Tensor& logits, const std::vector<int64_t>& sequence) {
    const double difference =
        (logits - FullForwardLastLogits(*plain, sequence)).abs().max().item<double>();
    worst = std::max(worst, difference);
    EXPECT_LE(difference, 1e-5) << "after " << sequence.size() << " tokens";
  };

  constexpr int64_t kChunk = 7;  // inside every prompt but the first
  for (int64_t s = 0; s < 3; ++s) {
    const std::vector<int64_t>& prompt = sequences[s];
    const int64_t length = static_cast<int64_t>(prompt.size());
    for (int64_t first = 0; first < length; first += kChunk) {
      const int64_t count = std::min(kChunk, length - first);
      cache.SetStep({{s, first, count}});
      const Tensor hidden = cached->forward(
          torch::tensor(
              std::vector<int64_t>(prompt.begin() + first, prompt.begin() + first + count)),
          {torch::full({count}, s, torch::kInt64), torch::arange(first, first + count)});
      if (first + count == length) compare(cached->Logits(hidden, count - 1, count)[0], prompt);
    }
  }

  // Steps 0-3 decode every slot; steps 4-7 slots 0 and 2 only (not the leading slots).
  for (int step = 0; step < 8; ++step) {
    const std::vector<int64_t> active =
        step < 4 ? std::vector<int64_t>{0, 1, 2} : std::vector<int64_t>{0, 2};
    std::vector<SlotRun> runs;
    std::vector<int64_t> tokens, positions;
    for (int64_t s : active) {
      const int64_t token = (step * 31 + s * 7) % 128;
      runs.push_back({s, static_cast<int64_t>(sequences[s].size()), 1});
      positions.push_back(static_cast<int64_t>(sequences[s].size()));
      tokens.push_back(token);
      sequences[s].push_back(token);
    }
    cache.SetStep(runs);
    const int64_t n = static_cast<int64_t>(active.size());
    const Tensor hidden =
        cached->forward(torch::tensor(tokens), {torch::tensor(active), torch::tensor(positions)});
    const Tensor logits = cached->Logits(hidden, 0, n);
    for (int64_t i = 0; i < n; ++i) compare(logits[i], sequences[active[i]]);
  }
  std::cerr << "largest logit difference " << worst << "\n";
}

TEST(KvCacheTest, AStepOutsideTheCacheIsRefused) {
  const model::LlamaConfig config = model::testing::TinyLlamaConfig();
  auto model = *model::CreateLlama(config, kSeed);
  KvCache cache(config, 2, 8, torch::kCPU, torch::kFloat32);
  cache.Attach(*model);
  torch::NoGradGuard no_grad;
  cache.SetStep({{0, 6, 4}});  // positions 6..9 of 8
  EXPECT_THROW(model->forward(torch::zeros({4}, torch::kInt64),
                              {torch::zeros({4}, torch::kInt64), torch::arange(6, 10)}),
               c10::Error);
  cache.SetStep({{2, 0, 1}});  // no slot 2
  EXPECT_THROW(model->forward(torch::zeros({1}, torch::kInt64), {torch::full({1}, 2, torch::kInt64),
                                                                 torch::zeros({1}, torch::kInt64)}),
               c10::Error);
}

}  // namespace
}  // namespace prolong::evaluator::generate
