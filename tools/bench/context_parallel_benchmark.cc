// The cost of context parallelism on the CPU at equal work: one global batch of S packed
// sequences of T tokens (several documents each, so attention is masked as in training), the
// same model and optimizer step, trained three ways on the same two cores:
//   cp=1   one process with 2 intra-op threads, the whole batch;
//   dp=2   two processes of 1 thread, whole sequences each (no attention traffic);
//   cp=2   two processes of 1 thread, each sequence split into the datamixer's zigzag chunks,
//          with each context-parallel scheme: all-gather (K/V gathered forward, dK/dV
//          reduce-scattered backward), ring (K/V passed round while computing) and Ulysses
//          (q, k, v and out exchanged all-to-all; whole sequences per head group).
// dp=2 and cp=2 run the same arithmetic on the same resources; they differ only in the
// context-parallel exchange and in how attention's work is split, which is what cp=2 over dp=2
// measures. Rounds alternate the setups; medians are printed with the ratios.
//
//   context_parallel_benchmark [--tokens=4096 --sequences=2 --documents=4 --steps=3 --rounds=3]
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
#include "trainer/parallel/parallel_plan.h"
#include "trainer/train/batch.h"
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

constexpr char kSecondsPerStep[] = "seconds_per_step ";

// The file of this program, for its ranks (each its own process).
std::string SelfPath() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  PROLONG_CHECK(n > 0) << "cannot read /proc/self/exe";
  return std::string(path, n);
}

// One rank: trains the steps on its slice; rank 0 prints "seconds_per_step S".
int RunRank(const Shape& shape, comm::RendezvousOptions rendezvous, int threads,
            parallel::CpScheme scheme) {
  at::set_num_threads(threads);
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
  options.parallel.activation_checkpointing = parallel::ActivationCheckpointing::kOff;
  options.parallel.precision = parallel::Precision::kFp32;
  options.parallel.cp_scheme = scheme;
  auto trainer = train::testing::CreateTrainer(*llama, groups.get(), options, schedule);
  PROLONG_CHECK(trainer.ok()) << trainer.status();
  auto input = train::StepInputFromBatch(train::testing::RankBatch(GlobalBatch(shape), 0, rank), 1);
  PROLONG_CHECK(input.ok()) << input.status();

  PROLONG_CHECK((*trainer)->Step(*input).ok());  // Warm-up.
  const absl::Time start = absl::Now();
  for (int s = 0; s < shape.steps; ++s) PROLONG_CHECK((*trainer)->Step(*input).ok());
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start) / shape.steps;
  if (rendezvous.rank == 0) std::printf("%s%.5f\n", kSecondsPerStep, seconds);
  if (groups != nullptr) groups->world->Barrier();
  return 0;
}

struct Setup {
  const char* name;
  int dp, cp, threads;
  parallel::CpScheme scheme = parallel::CpScheme::kAllGather;
};

// Runs one setup as a gang of processes and returns rank 0's seconds per step.
double RunSetup(const Shape& shape, const Setup& setup) {
  const int world = setup.dp * setup.cp;
  std::unique_ptr<comm::StoreServer> store;
  if (world > 1) {
    auto served = comm::ServeStore("127.0.0.1");
    PROLONG_CHECK(served.ok()) << served.status();
    store = *std::move(served);
  }
  std::vector<std::unique_ptr<testing::Subprocess>> ranks;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> argv = {
        SelfPath(),
        absl::StrCat("--rank=", r),
        absl::StrCat("--world=", world),
        absl::StrCat("--dp=", setup.dp),
        absl::StrCat("--cp=", setup.cp),
        absl::StrCat("--threads=", setup.threads),
        absl::StrCat("--cp-scheme=", parallel::CpSchemeName(setup.scheme)),
        absl::StrCat("--tokens=", shape.tokens),
        absl::StrCat("--sequences=", shape.sequences),
        absl::StrCat("--documents=", shape.documents),
        absl::StrCat("--steps=", shape.steps)};
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
  double seconds = 0;
  const std::string output = ranks[0]->Stdout();
  absl::string_view line = absl::StripAsciiWhitespace(output);
  PROLONG_CHECK(absl::ConsumePrefix(&line, kSecondsPerStep) && absl::SimpleAtod(line, &seconds))
      << output;
  return seconds;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

int Launch(const Shape& shape, int rounds) {
  const std::vector<Setup> setups = {{"cp=1", 1, 1, 2},
                                     {"dp=2", 2, 1, 1},
                                     {"cp=2", 1, 2, 1, parallel::CpScheme::kAllGather},
                                     {"cp=2-ring", 1, 2, 1, parallel::CpScheme::kRing},
                                     {"cp=2-ulysses", 1, 2, 1, parallel::CpScheme::kUlysses}};
  std::map<std::string, std::vector<double>> seconds;
  const double tokens = static_cast<double>(shape.tokens * shape.sequences);
  std::printf("global batch: %ld sequences of %ld tokens, %ld documents each; %d timed steps\n",
              shape.sequences, shape.tokens, shape.documents, shape.steps);
  for (int round = 1; round <= rounds; ++round) {
    std::printf("round %d:", round);
    for (const Setup& setup : setups) {
      const double s = RunSetup(shape, setup);
      seconds[setup.name].push_back(s);
      std::printf("  %s %.3f s/step (%.0f tokens/s)", setup.name, s, tokens / s);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
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

}  // namespace
}  // namespace prolong

int main(int argc, char** argv) {
  prolong::Shape shape;
  prolong::comm::RendezvousOptions rendezvous;
  rendezvous.rank = -1;
  int threads = 1, rounds = 3;
  std::string scheme = "all-gather";
  CLI::App app("Context parallelism's cost at equal work on the CPU.");
  prolong::ConfigureCli(app);
  app.add_option("--tokens", shape.tokens, "Tokens per sequence")->capture_default_str();
  app.add_option("--sequences", shape.sequences, "Sequences in the global batch")
      ->capture_default_str();
  app.add_option("--documents", shape.documents, "Documents per sequence")->capture_default_str();
  app.add_option("--steps", shape.steps, "Timed steps per run")->capture_default_str();
  app.add_option("--rounds", rounds, "Rounds of the three setups")->capture_default_str();
  // A rank of a gang (set by the launcher).
  app.add_option("--rank", rendezvous.rank)->group("");
  app.add_option("--world", rendezvous.world_size)->group("");
  app.add_option("--dp", rendezvous.dp_size)->group("");
  app.add_option("--cp", rendezvous.cp_size)->group("");
  app.add_option("--store", rendezvous.store_address)->group("");
  app.add_option("--threads", threads)->group("");
  app.add_option("--cp-scheme", scheme)->group("");
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;
  if (const absl::Status valid = prolong::Validate(shape); !valid.ok()) {
    std::fprintf(stderr, "%s\n", std::string(valid.message()).c_str());
    return 2;
  }
  if (rendezvous.rank >= 0) {
    return prolong::RunRank(shape, rendezvous, threads, *prolong::parallel::ParseCpScheme(scheme));
  }
  return prolong::Launch(shape, rounds);
}
