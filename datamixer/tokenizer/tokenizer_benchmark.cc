// Single-thread encode throughput of a tokenizer on a text file:
//   tokenizer_benchmark --tokenizer=FILE [--preset=NAME] --text=FILE [benchmark flags]
// tools/bench/tokenizer.sh runs it side by side with npm's tiktoken on the same text.

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "benchmark/benchmark.h"
#include "datamixer/tokenizer/load.h"

namespace {

std::string FlagValue(int& argc, char** argv, const char* name) {
  const std::string prefix = std::string("--") + name + "=";
  std::string value;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (absl::StartsWith(argv[i], prefix)) {
      value = argv[i] + prefix.size();
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string tokenizer_path = FlagValue(argc, argv, "tokenizer");
  const std::string preset = FlagValue(argc, argv, "preset");
  const std::string text_path = FlagValue(argc, argv, "text");
  benchmark::Initialize(&argc, argv);
  if (tokenizer_path.empty() || text_path.empty()) {
    std::fprintf(stderr,
                 "usage: tokenizer_benchmark --tokenizer=FILE [--preset=NAME] --text=FILE\n");
    return 2;
  }
  auto tokenizer = prolong::tokenizer::LoadTokenizer(tokenizer_path, preset);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tokenizer.status().message()).c_str());
    return 1;
  }
  std::ifstream in(text_path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  const std::string text = contents.str();

  benchmark::RegisterBenchmark(
      "Encode",
      [&](benchmark::State& state) {
        size_t tokens = 0;
        for (auto _ : state) {
          std::vector<uint32_t> ids = (*tokenizer)->Encode(text);
          tokens = ids.size();
          benchmark::DoNotOptimize(ids.data());
        }
        state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
        state.counters["tokens"] = static_cast<double>(tokens);
      })
      ->Unit(benchmark::kMillisecond)
      ->MinTime(3.0);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
