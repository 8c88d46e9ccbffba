// Runs::Create from one thread and from 50: every submission is a synced RocksDB write made
// outside the runs' lock, so concurrent ones share a sync (RocksDB commits them as a group).
//
//   bazel run -c opt //scheduler:runs_benchmark
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "scheduler/runs.h"

namespace prolong::scheduler {
namespace {

std::unique_ptr<Runs> runs;
std::string store_dir;
std::atomic<int64_t> next_request{0};

void BM_Create(benchmark::State& state) {
  if (state.thread_index() == 0) {
    std::string dir =
        absl::StrCat(std::filesystem::temp_directory_path().string(), "/runs-benchmark-XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) state.SkipWithError("mkdtemp failed");
    store_dir = dir;
    absl::StatusOr<std::unique_ptr<Runs>> opened = Runs::Open(store_dir + "/store");
    if (!opened.ok()) state.SkipWithError(std::string(opened.status().message()).c_str());
    runs = *std::move(opened);
  }
  v1::RunSpec spec;
  spec.set_name("bench");
  spec.add_stages()->set_name("short");
  for (auto _ : state) {
    bool created = false;
    absl::StatusOr<v1::Run> run =
        runs->Create(spec, absl::StrCat("request-", next_request++), &created);
    if (!run.ok()) state.SkipWithError(std::string(run.status().message()).c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    runs.reset();
    std::filesystem::remove_all(store_dir);
  }
}
BENCHMARK(BM_Create)->Threads(1)->Threads(50)->UseRealTime()->MinTime(2);

}  // namespace
}  // namespace prolong::scheduler
