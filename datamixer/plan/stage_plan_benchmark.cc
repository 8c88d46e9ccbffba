// How long a stage plan takes to build and how much memory it keeps, per 1M sequences, on a
// ProLong-shaped mixture: 63% long documents (64K to 1M tokens, one chunk a sequence) and 37%
// short ones (1 to 8K tokens, 64 or more to a 64K sequence). The data index itself (24 bytes a
// document) is reported apart: it is loaded once per store, not per plan.
//
// BM_RankBalance: on the same mixture, how unevenly each step's attention work falls on 8
// data-parallel ranks (rank_balance.h's StepImbalance, what `prolongctl data plan --dp-size`
// prints) under contiguous slices and as the datamixer lays batches out, at micro-batches of 1
// and 2 sequences and of a whole share.
//
//   bazel run -c opt //datamixer/plan:stage_plan_benchmark -- --benchmark_repetitions=3

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include "benchmark/benchmark.h"
#include "datamixer/plan/rank_balance.h"
#include "datamixer/plan/stage_plan.h"

namespace prolong::plan {
namespace {

// Bytes allocated, including the large blocks malloc takes straight from mmap.
size_t HeapBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Enough documents for `sequences` sequences of `seq_len` at the ProLong shares.
std::shared_ptr<const DataIndex> ProlongShapedData(int64_t sequences, int64_t seq_len) {
  std::mt19937_64 rng(7);
  auto data = std::make_shared<DataIndex>();
  data->fingerprint = "bench";
  auto add = [&](const std::string& name, int64_t tokens_needed, int64_t min_length,
                 int64_t max_length) {
    std::vector<int64_t> lengths;
    int64_t tokens = 0;
    while (tokens < tokens_needed) {
      // Log-uniform between the bounds: many short documents, a long tail.
      const double u = static_cast<double>(rng() % 1000000) / 1e6;
      const int64_t length = static_cast<int64_t>(
          static_cast<double>(min_length) *
          std::pow(static_cast<double>(max_length) / static_cast<double>(min_length), u));
      lengths.push_back(length);
      tokens += length - (min_length >= seq_len ? length % seq_len : 0);
    }
    DomainIndex domain{name, std::string(16 * lengths.size(), 'x'),
                       std::make_shared<const std::vector<int64_t>>(std::move(lengths)), tokens};
    data->domains.push_back(std::move(domain));
  };
  const double total = static_cast<double>(sequences * seq_len) * 1.02;
  add("books", static_cast<int64_t>(total * 0.30), seq_len, 16 * seq_len);
  add("code", static_cast<int64_t>(total * 0.30), seq_len, 16 * seq_len);
  add("short", static_cast<int64_t>(total * 0.37), 1, 8192);
  add("textbooks", static_cast<int64_t>(total * 0.03), seq_len, 4 * seq_len);
  return data;
}

v1::StageSpec ProlongShapedStage(int64_t sequences, int64_t seq_len, int64_t batch_sequences) {
  v1::StageSpec stage;
  stage.set_seq_len(seq_len);
  stage.set_batch_tokens(seq_len * batch_sequences);
  stage.set_total_tokens(seq_len * sequences);
  for (const auto& [domain, share, packing] : {std::tuple{"books", 0.30, v1::PACKING_LONG},
                                               {"code", 0.30, v1::PACKING_LONG},
                                               {"short", 0.37, v1::PACKING_SHORT},
                                               {"textbooks", 0.03, v1::PACKING_LONG}}) {
    v1::MixtureComponent* component = stage.add_mixture();
    component->set_domain(domain);
    component->set_proportion(share);
    component->set_packing(packing);
  }
  return stage;
}

void BM_BuildPlan(benchmark::State& state) {
  const int64_t seq_len = state.range(0);
  const int64_t sequences = 1 << 20;
  const int64_t batch_sequences = 64;
  const size_t before_index = HeapBytes();
  std::shared_ptr<const DataIndex> data = ProlongShapedData(sequences, seq_len);
  const size_t index_bytes = HeapBytes() - before_index;
  const v1::StageSpec stage = ProlongShapedStage(sequences, seq_len, batch_sequences);
  size_t plan_bytes = 0;
  for (auto _ : state) {
    const size_t before = HeapBytes();
    absl::StatusOr<std::shared_ptr<const StagePlan>> plan = StagePlan::Build(stage, 1, data);
    if (!plan.ok()) {
      state.SkipWithError(std::string(plan.status().message()).c_str());
      return;
    }
    plan_bytes = HeapBytes() - before;
    benchmark::DoNotOptimize(plan);
  }
  state.counters["sequences"] = static_cast<double>(sequences);
  state.counters["plan_MB"] = static_cast<double>(plan_bytes) / 1e6;
  state.counters["plan_bytes_per_sequence"] = static_cast<double>(plan_bytes) / sequences;
  state.counters["index_MB"] = static_cast<double>(index_bytes) / 1e6;
  int64_t documents = 0;
  for (const DomainIndex& domain : data->domains) documents += domain.documents();
  state.counters["documents"] = static_cast<double>(documents);
}
BENCHMARK(BM_BuildPlan)->Arg(8192)->Arg(65536)->Iterations(1)->Unit(benchmark::kSecond);

// Arguments: sequences per micro-batch (0: a whole share). 1,000 steps of 64 sequences of 64K
// tokens on 8 ranks; counters: mean and max over the steps of the imbalance (1 is even).
void BM_RankBalance(benchmark::State& state) {
  const int64_t micro = state.range(0);
  const int64_t seq_len = 65536, batch_sequences = 64, steps = 1000;
  const int dp_size = 8;
  const v1::StageSpec stage = ProlongShapedStage(steps * batch_sequences, seq_len, batch_sequences);
  absl::StatusOr<std::shared_ptr<const StagePlan>> plan =
      StagePlan::Build(stage, 1, ProlongShapedData(steps * batch_sequences, seq_len));
  if (!plan.ok()) {
    state.SkipWithError(std::string(plan.status().message()).c_str());
    return;
  }
  double contiguous_sum = 0, contiguous_max = 0, balanced_sum = 0, balanced_max = 0;
  for (auto _ : state) {
    for (int64_t step = 0; step < steps; ++step) {
      const std::vector<double> costs = AttentionCosts((*plan)->GlobalBatch(step));
      const double contiguous =
          StepImbalance(costs, ContiguousDataParallel(batch_sequences, dp_size), micro);
      const double balanced =
          StepImbalance(costs, *BalanceDataParallel(costs, dp_size, micro), micro);
      contiguous_sum += contiguous;
      contiguous_max = std::max(contiguous_max, contiguous);
      balanced_sum += balanced;
      balanced_max = std::max(balanced_max, balanced);
    }
  }
  state.counters["contiguous_mean"] = contiguous_sum / steps;
  state.counters["contiguous_max"] = contiguous_max;
  state.counters["balanced_mean"] = balanced_sum / steps;
  state.counters["balanced_max"] = balanced_max;
}
BENCHMARK(BM_RankBalance)->Arg(1)->Arg(2)->Arg(0)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace prolong::plan
