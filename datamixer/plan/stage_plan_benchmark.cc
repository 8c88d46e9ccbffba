// How long a stage plan takes to build and how much memory it keeps, per 1M sequences, on a
// ProLong-shaped mixture: 63% long documents (64K to 1M tokens, one chunk a sequence) and 37%
// short ones (1 to 8K tokens, 64 or more to a 64K sequence). The data index itself (24 bytes a
// document) is reported apart: it is loaded once per store, not per plan.
//
//   bazel run -c opt //datamixer/plan:stage_plan_benchmark -- --benchmark_repetitions=3

#include <malloc.h>

#include <cmath>
#include <random>
#include <tuple>

#include "benchmark/benchmark.h"
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

void BM_BuildPlan(benchmark::State& state) {
  const int64_t seq_len = state.range(0);
  const int64_t sequences = 1 << 20;
  const int64_t batch_sequences = 64;
  const size_t before_index = HeapBytes();
  std::shared_ptr<const DataIndex> data = ProlongShapedData(sequences, seq_len);
  const size_t index_bytes = HeapBytes() - before_index;
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

}  // namespace
}  // namespace prolong::plan
