// Parallel layouts side by side at equal work on the CPU: one global batch of S packed
// sequences of T tokens (several documents each, so attention is masked as in training), the
// same model and optimizer step, trained by gangs of processes on the same two cores.
//
// --compare=cp (the default): the cost of context parallelism.
//   cp=1   one process with 2 intra-op threads, the whole batch;
//   dp=2   two processes of 1 thread, whole sequences each (no attention traffic);
//   cp=2   two processes of 1 thread, each sequence split into the datamixer's zigzag chunks,
//          with each context-parallel scheme: all-gather (K/V gathered forward, dK/dV
//          reduce-scattered backward), ring (K/V passed round while computing) and Ulysses
//          (q, k, v and out exchanged all-to-all; whole sequences per head group).
// dp=2 and cp=2 run the same arithmetic on the same resources; they differ only in the
// context-parallel exchange and in how attention's work is split, which is what cp=2 over dp=2
// measures.
//
// --compare=sharding: fully sharded weights against ZeRO-1, both over dp=2 with full activation
// checkpointing (which sharded weights need: a layer's weights are gathered again for its
// recomputation); then, for memory, dp=4 unsharded against sharded over 4, one step each: the
// bytes a rank holds in parameters, gradients and AdamW moments, and the most whole weights it
// held at once.
//
// Rounds alternate the setups; medians are printed with the ratios.
//
//   parallel_layouts_benchmark [--compare=cp|sharding] [--tokens=4096 --sequences=2
//       --documents=4 --steps=3 --rounds=3]
// Each rank is this binary run again with --rank (a gang over Gloo on 127.0.0.1).

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/log.h"
#include "tests/subprocess.h"
#include "tools/bench/bench_model.h"
#include "torch/torch.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/parallel/cp_scheme.h"
#include "trainer/parallel/data_parallel.h"
#include "trainer/parallel/fully_sharded.h"
#include "trainer/parallel/parallel_plan.h"
#include "trainer/train/batch.h"
#include "trainer/train/cpu_memory_meter.h"
#include "trainer/train/memory_plan.h"
#include "trainer/train/train_test_data.h"
#include "trainer/train/trainer.h"

namespace prolong {
namespace {

struct Shape {
  int64_t tokens = 4096;
  int64_t sequences = 2;
  int64_t documents = 4;
  int steps = 3;
};

absl::Status Validate(const Shape& shape) {
  if (shape.documents < 1 || shape.documents > shape.tokens) {
    return absl::InvalidArgumentError("--documents must be in [1, --tokens]");
  }
  return absl::OkStatus();
}

// Sequences of `documents` documents of random lengths.
std::vector<train::testing::GlobalSequence> GlobalBatch(const Shape& shape) {
  std::mt19937_64 random(7);
  std::vector<train::testing::GlobalSequence> batch(shape.sequences);
  for (auto& sequence : batch) {
    std::vector<int32_t> cuts = {0, static_cast<int32_t>(shape.tokens)};
    while (static_cast<int64_t>(cuts.size()) < shape.documents + 1) {
      const int32_t cut = static_cast<int32_t>(1 + random() % (shape.tokens - 1));
      if (std::find(cuts.begin(), cuts.end(), cut) == cuts.end()) cuts.push_back(cut);
    }
    std::sort(cuts.begin(), cuts.end());
    sequence.cu_seqlens = cuts;
    for (int64_t t = 0; t < shape.tokens; ++t) {
      sequence.tokens.push_back(static_cast<uint32_t>(random() % 32000));
      sequence.loss_mask.push_back(1);
    }
    for (size_t d = 1; d < cuts.size(); ++d) sequence.loss_mask[cuts[d] - 1] = 0;
  }
  return batch;
}

// What a setup varies besides its gang's shape: each rank's threads and parallel plan.
struct Layout {
  int threads = 1;
  parallel::CpScheme scheme = parallel::CpScheme::kAllGather;
  bool zero1 = false;  // shard_optimizer_state
  bool shard_weights = false;
  bool checkpointing = false;  // full activation checkpointing
};

// What rank 0 prints, on one line after kReport.
struct Report {
  double seconds_per_step = 0;
  double held_bytes = 0;  // parameters, gradients and AdamW moments, between steps
  double peak_gathered_bytes = 0;
  double peak_bytes = 0;     // LibTorch's CPU memory at most during the timed steps
  double planned_bytes = 0;  // the peak train::PlanMemory expects
};
constexpr char kReport[] = "report ";

// The file of this program, for its ranks (each its own process).
std::string SelfPath() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  PROLONG_CHECK(n > 0) << "cannot read /proc/self/exe";
  return std::string(path, n);
}

// One rank: trains the steps on its share and (rank 0) prints its Report.
int RunRank(const Shape& shape, comm::RendezvousOptions rendezvous, const Layout& layout) {
  at::set_num_threads(layout.threads);
  train::CpuMemoryMeter::Install();
  std::unique_ptr<comm::ProcessGroups> groups;
  plan::Rank rank{0, 1, 0, 1};
  if (rendezvous.world_size > 1) {
    auto joined = comm::JoinGloo(rendezvous);
    PROLONG_CHECK(joined.ok()) << joined.status();
    groups = std::make_unique<comm::ProcessGroups>(*std::move(joined));
    rank = {groups->dp_rank, rendezvous.dp_size, groups->cp_rank, rendezvous.cp_size};
  }
  auto llama = model::CreateLlama(bench::BenchLlamaConfig(), 1);
  PROLONG_CHECK(llama.ok()) << llama.status();
  train::LrSchedule schedule;
  schedule.peak_lr = 1e-4;
  schedule.steps = shape.steps + 1;
  schedule.shape = train::ScheduleShape::kConstant;
  schedule.warmup_fraction = 0;
  train::TrainerOptions options;
  options.parallel.activation_checkpointing = layout.checkpointing
                                                  ? parallel::ActivationCheckpointing::kFull
                                                  : parallel::ActivationCheckpointing::kOff;
  options.parallel.precision = parallel::Precision::kFp32;
  options.parallel.cp_scheme = layout.scheme;
  options.parallel.shard_optimizer_state = layout.zero1;
  options.parallel.shard_weights = layout.shard_weights;
  auto trainer = train::testing::CreateTrainer(*llama, groups.get(), options, schedule);
  PROLONG_CHECK(trainer.ok()) << trainer.status();
  auto input = train::StepInputFromBatch(train::testing::RankBatch(GlobalBatch(shape), 0, rank), 1);
  PROLONG_CHECK(input.ok()) << input.status();

  PROLONG_CHECK((*trainer)->Step(*input).ok());  // Warm-up.
  train::CpuMemoryMeter::ResetPeak();
  const absl::Time start = absl::Now();
  for (int s = 0; s < shape.steps; ++s) PROLONG_CHECK((*trainer)->Step(*input).ok());
  Report report;
  report.seconds_per_step = absl::ToDoubleSeconds(absl::Now() - start) / shape.steps;
  report.held_bytes = static_cast<double>(train::testing::HeldBytes(**trainer));
  report.peak_bytes = static_cast<double>(train::CpuMemoryMeter::peak_bytes());
  train::MemoryLayout memory;
  memory.seq_len = shape.tokens;
  memory.micro_batches = shape.sequences / rendezvous.dp_size;
  memory.world_size = rendezvous.world_size;
  memory.cp_size = rendezvous.cp_size;
  memory.plan = options.parallel;
  memory.logit_block_size = options.logit_block_size;
  auto planned = train::PlanMemory(bench::BenchLlamaConfig(), memory);
  PROLONG_CHECK(planned.ok()) << planned.status();
  report.planned_bytes = static_cast<double>(planned->peak());
  if (const parallel::FullySharded* sharded = (*trainer)->model().data_parallel->sharded()) {
    report.peak_gathered_bytes = static_cast<double>(sharded->peak_gathered_bytes());
  }
  if (rendezvous.rank <= 0) {
    std::printf("%s%.5f %.0f %.0f %.0f %.0f\n", kReport, report.seconds_per_step, report.held_bytes,
                report.peak_gathered_bytes, report.peak_bytes, report.planned_bytes);
  }
  if (groups != nullptr) groups->world->Barrier();
  return 0;
}

struct Setup {
  const char* name;
  int dp, cp;
  Layout layout;
};

// Runs one setup as a gang of processes and returns rank 0's report.
Report RunSetup(const Shape& shape, const Setup& setup) {
  const int world = setup.dp * setup.cp;
  std::unique_ptr<comm::StoreServer> store;
  if (world > 1) {
    auto served = comm::ServeStore("127.0.0.1");
    PROLONG_CHECK(served.ok()) << served.status();
    store = *std::move(served);
  }
  const Layout& layout = setup.layout;
  std::vector<std::unique_ptr<testing::Subprocess>> ranks;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv = {
        SelfPath(),
        absl::StrCat("--rank=", r),
        absl::StrCat("--world=", world),
        absl::StrCat("--dp=", setup.dp),
        absl::StrCat("--cp=", setup.cp),
        absl::StrCat("--threads=", layout.threads),
        absl::StrCat("--cp-scheme=", parallel::CpSchemeName(layout.scheme)),
        absl::StrCat("--tokens=", shape.tokens),
        absl::StrCat("--sequences=", shape.sequences),
        absl::StrCat("--documents=", shape.documents),
        absl::StrCat("--steps=", shape.steps)};
    if (layout.zero1) argv.push_back("--zero1");
    if (layout.shard_weights) argv.push_back("--shard-weights");
    if (layout.checkpointing) argv.push_back("--checkpointing");
    if (store != nullptr) argv.push_back("--store=" + store->address());
    auto started = testing::Subprocess::Start(argv);
    PROLONG_CHECK(started.ok()) << started.status();
    ranks.push_back(*std::move(started));
  }
  for (int r = 0; r < world; ++r) {
    auto code = ranks[r]->Wait(absl::Minutes(30));
    PROLONG_CHECK(code.ok() && *code == 0)
        << setup.name << " rank " << r << " failed: " << ranks[r]->Stderr();
  }
  Report report;
  const std::string output = ranks[0]->Stdout();
  const size_t at = output.find(kReport);
  PROLONG_CHECK(at != std::string::npos &&
                std::sscanf(output.c_str() + at + sizeof(kReport) - 1, "%lf %lf %lf %lf %lf",
                            &report.seconds_per_step, &report.held_bytes,
                            &report.peak_gathered_bytes, &report.peak_bytes,
                            &report.planned_bytes) == 5)
      << output;
  return report;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Runs the setups `rounds` times, alternating, printing each; returns the seconds per step by
// setup name, and the last report of each.
std::map<std::string, std::vector<double>> RunRounds(const Shape& shape,
                                                     const std::vector<Setup>& setups, int rounds,
                                                     std::map<std::string, Report>* last) {
  std::map<std::string, std::vector<double>> seconds;
  const double tokens = static_cast<double>(shape.tokens * shape.sequences);
  for (int round = 1; round <= rounds; ++round) {
    std::printf("round %d:", round);
    for (const Setup& setup : setups) {
      const Report report = RunSetup(shape, setup);
      seconds[setup.name].push_back(report.seconds_per_step);
      (*last)[setup.name] = report;
      std::printf("  %s %.3f s/step (%.0f tokens/s)", setup.name, report.seconds_per_step,
                  tokens / report.seconds_per_step);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return seconds;
}

int CompareContextParallel(const Shape& shape, int rounds) {
  Layout two_threads;
  two_threads.threads = 2;
  Layout ring, ulysses;
  ring.scheme = parallel::CpScheme::kRing;
  ulysses.scheme = parallel::CpScheme::kUlysses;
  const std::vector<Setup> setups = {{"cp=1", 1, 1, two_threads},
                                     {"dp=2", 2, 1, {}},
                                     {"cp=2", 1, 2, {}},
                                     {"cp=2-ring", 1, 2, ring},
                                     {"cp=2-ulysses", 1, 2, ulysses}};
  std::map<std::string, Report> last;
  std::map<std::string, std::vector<double>> seconds = RunRounds(shape, setups, rounds, &last);
  const double tokens = static_cast<double>(shape.tokens * shape.sequences);
  const double cp1 = Median(seconds["cp=1"]), dp2 = Median(seconds["dp=2"]);
  std::printf("median s/step (tokens/s): cp=1 %.3f (%.0f), dp=2 %.3f (%.0f)\n", cp1, tokens / cp1,
              dp2, tokens / dp2);
  for (const char* cp : {"cp=2", "cp=2-ring", "cp=2-ulysses"}) {
    const double cp2 = Median(seconds[cp]);
    std::printf(
        "%s %.3f (%.0f): over dp=2 (the exchange and the split at equal work) %+.1f%%, over "
        "cp=1 %+.1f%%\n",
        cp, cp2, tokens / cp2, 100 * (cp2 / dp2 - 1), 100 * (cp2 / cp1 - 1));
  }
  return 0;
}

int CompareSharding(Shape shape, int rounds) {
  Layout zero1, sharded;
  zero1.checkpointing = sharded.checkpointing = true;
  zero1.zero1 = true;
  sharded.shard_weights = true;
  std::map<std::string, Report> last;
  std::map<std::string, std::vector<double>> seconds =
      RunRounds(shape, {{"zero1-2", 2, 1, zero1}, {"sharded-2", 2, 1, sharded}}, rounds, &last);
  const double zero1_seconds = Median(seconds["zero1-2"]);
  const double sharded_seconds = Median(seconds["sharded-2"]);
  std::printf("median s/step at N = 2: ZeRO-1 %.3f, sharded weights %.3f: %.2fx\n", zero1_seconds,
              sharded_seconds, sharded_seconds / zero1_seconds);

  // Memory does not depend on timing: one step of each at N = 4, a sequence a rank.
  shape.steps = 1;
  shape.sequences = 4;
  Layout plain = zero1;
  plain.zero1 = false;
  RunRounds(shape, {{"dp-4", 4, 1, plain}, {"sharded-4", 4, 1, sharded}}, 1, &last);
  const auto mb = [](double bytes) { return bytes / 1e6; };
  for (const char* name : {"zero1-2", "sharded-2", "dp-4", "sharded-4"}) {
    const Report& report = last[name];
    std::printf(
        "%-9s rank 0 holds %.2f MB in parameters, gradients and AdamW moments; %.2f MB of whole "
        "weights at most; peak %.2f MB, planned %.2f MB (%.3fx)\n",
        name, mb(report.held_bytes), mb(report.peak_gathered_bytes), mb(report.peak_bytes),
        mb(report.planned_bytes), report.planned_bytes / report.peak_bytes);
  }
  std::printf("sharded over 4 against unsharded: %.3fx the bytes held\n",
              last["sharded-4"].held_bytes / last["dp-4"].held_bytes);
  return 0;
}

}  // namespace
}  // namespace prolong

int main(int argc, char** argv) {
  prolong::Shape shape;
  prolong::comm::RendezvousOptions rendezvous;
  rendezvous.rank = -1;
  prolong::Layout layout;
  int rounds = 3;
  std::string scheme = "all-gather", compare = "cp";
  CLI::App app("Parallel layouts side by side at equal work on the CPU.");
  prolong::ConfigureCli(app);
  app.add_option("--compare", compare,
                 "cp: context parallelism's schemes against cp=1 and dp=2; sharding: sharded "
                 "weights against ZeRO-1, and their memory")
      ->check(CLI::IsMember({"cp", "sharding"}))
      ->capture_default_str();
  app.add_option("--tokens", shape.tokens, "Tokens per sequence")->capture_default_str();
  app.add_option("--sequences", shape.sequences, "Sequences in the global batch")
      ->capture_default_str();
  app.add_option("--documents", shape.documents, "Documents per sequence")->capture_default_str();
  app.add_option("--steps", shape.steps, "Timed steps per run")->capture_default_str();
  app.add_option("--rounds", rounds, "Rounds of the setups")->capture_default_str();
  // A rank of a gang (set by the launcher).
  app.add_option("--rank", rendezvous.rank)->group("");
  app.add_option("--world", rendezvous.world_size)->group("");
  app.add_option("--dp", rendezvous.dp_size)->group("");
  app.add_option("--cp", rendezvous.cp_size)->group("");
  app.add_option("--store", rendezvous.store_address)->group("");
  app.add_option("--threads", layout.threads)->group("");
  app.add_option("--cp-scheme", scheme)->group("");
  app.add_flag("--zero1", layout.zero1)->group("");
  app.add_flag("--shard-weights", layout.shard_weights)->group("");
  app.add_flag("--checkpointing", layout.checkpointing)->group("");
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;
  if (const absl::Status valid = prolong::Validate(shape); !valid.ok()) {
    std::fprintf(stderr, "%s\n", std::string(valid.message()).c_str());
    return 2;
  }
  if (rendezvous.rank >= 0) {
    layout.scheme = *prolong::parallel::ParseCpScheme(scheme);
    return prolong::RunRank(shape, rendezvous, layout);
  }
  return compare == "cp" ? prolong::CompareContextParallel(shape, rounds)
                         : prolong::CompareSharding(shape, rounds);
}
