// Generation on the CPU with the benchmark model (tools/bench/bench_model.h: 4 layers of width
// 256, vocabulary 32,000): the cost of one decoding step as the context grows, the step against
// recomputing the whole prefix, and chunked prefill against the trainer's forward over the same
// tokens.
//
//   bazel run -c opt //evaluator/generate:generate_benchmark --
//       --benchmark_repetitions=3 --benchmark_report_aggregates_only=true

#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "evaluator/generate/kv_cache.h"
#include "tools/bench/bench_model.h"
#include "torch/torch.h"
#include "trainer/model/llama.h"

namespace prolong::evaluator::generate {
namespace {

using torch::Tensor;

std::shared_ptr<model::LlamaForCausalLM> BenchModel() {
  auto model = *model::CreateLlama(bench::BenchLlamaConfig(), 1);
  model->eval();
  return model;
}

Tensor RandomIds(int64_t n) { return torch::randint(0, 32000, {n}, torch::kInt64); }

// Prefills `context` tokens into slot 0 of `cache` in chunks; returns the last hidden state.
Tensor Prefill(model::LlamaForCausalLM& model, KvCache& cache, const Tensor& ids, int64_t chunk) {
  const int64_t n = ids.size(0);
  Tensor hidden;
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    cache.SetStep({{0, first, count}});
    hidden = model.forward(ids.narrow(0, first, count), {torch::zeros({count}, torch::kInt64),
                                                         torch::arange(first, first + count)});
  }
  return hidden;
}

// One decoding step (a token through every layer, then its logits) at `context` tokens.
void BM_DecodeStep(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const int64_t context = state.range(0);
  auto model = BenchModel();
  constexpr int64_t kSteps = 64;
  KvCache cache(model->config(), 1, context + kSteps, torch::kCPU, torch::kFloat32);
  cache.Attach(*model);
  Prefill(*model, cache, RandomIds(context), 4096);
  int64_t position = context;
  for (auto _ : state) {
    if (position == context + kSteps) position = context;  // rewrite the same positions
    cache.SetStep({{0, position, 1}});
    const Tensor hidden = model->forward(RandomIds(1), {torch::zeros({1}, torch::kInt64),
                                                        torch::full({1}, position, torch::kInt64)});
    benchmark::DoNotOptimize(model->Logits(hidden, 0, 1));
    ++position;
  }
  state.counters["tokens/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStep)->RangeMultiplier(2)->Range(1024, 32768)->Unit(benchmark::kMillisecond);

// The same token without a cache: the whole prefix through the model again.
void BM_RecomputeStep(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const int64_t context = state.range(0);
  auto model = BenchModel();
  const Tensor ids = RandomIds(context + 1);
  for (auto _ : state) {
    const Tensor hidden = model->forward(
        ids, {torch::zeros({context + 1}, torch::kInt64), torch::arange(context + 1)});
    benchmark::DoNotOptimize(model->Logits(hidden, context, context + 1));
  }
  state.counters["tokens/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RecomputeStep)->Arg(4096)->Unit(benchmark::kMillisecond);

// A prompt prefilled in chunks of 4,096 through the cache.
void BM_Prefill(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const int64_t tokens = state.range(0);
  auto model = BenchModel();
  KvCache cache(model->config(), 1, tokens, torch::kCPU, torch::kFloat32);
  cache.Attach(*model);
  const Tensor ids = RandomIds(tokens);
  for (auto _ : state) benchmark::DoNotOptimize(Prefill(*model, cache, ids, 4096));
  state.counters["tokens/s"] =
      benchmark::Counter(state.iterations() * tokens, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Prefill)->Arg(32768)->Unit(benchmark::kMillisecond)->Iterations(1);

// The trainer's forward (no gradients) over the same tokens as one document.
void BM_TrainerForward(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const int64_t tokens = state.range(0);
  auto model = BenchModel();
  const Tensor ids = RandomIds(tokens);
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        model->forward(ids, {torch::zeros({tokens}, torch::kInt64), torch::arange(tokens)}));
  }
  state.counters["tokens/s"] =
      benchmark::Counter(state.iterations() * tokens, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrainerForward)->Arg(32768)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace prolong::evaluator::generate
