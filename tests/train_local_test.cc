// `prolongctl train --local` against a real datamixer process, with a tiny Llama (hidden 32,
// 2 layers, 4 heads, 2 kv heads, vocabulary 256) on documents it can learn (arithmetic
// progressions of token ids), 12 steps of 4 sequences of 64 tokens:
//   - two data-parallel ranks train to the end: exit 0, one log line a step with a finite,
//     falling loss, every checkpoint verifies, /metrics has the trainer's series;
//   - a run interrupted again and again (SIGTERM to the launcher, SIGKILL of one or both
//     workers at random moments, checkpoint saves included) and restarted until done ends
//     with the same model and optimizer bytes as a run that was never interrupted;
//   - with --shard-optimizer-state (ZeRO-1) the run ends with the same bytes, and its
//     checkpoints resume without the flag, and the other way round, to the same bytes;
//   - the same job with cp = 2 (all-gather or ring) loses like the dp = 2 run, step by step;
//   - resuming on changed data, or with another seed, is refused, naming both sides;
//   - a second stage started from the first one's checkpoints keeps the weights, the AdamW
//     state and the run's step count and restarts the schedule (or resets the optimizer);
//   - a non-finite loss fails the run and leaves the last good checkpoint the newest;
//   - bad flags, a missing stage file, a rank that never comes and an unreachable datamixer
//     are one clear line and a non-zero exit.

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"
#include "tests/training_stack.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/trainer_state.h"

namespace prolong {
namespace {

namespace fs = std::filesystem;
using testing::Subprocess;

constexpr char kDatamixer[] = "services/datamixer/datamixer";
constexpr char kProlongctl[] = "services/prolongctl/prolongctl";
constexpr char kTrainer[] = "services/trainer/trainer";
constexpr int64_t kSteps = 12;

constexpr char kStage[] = R"(name: local-test
seq_len: 64
batch_tokens: 256            # 4 sequences
total_tokens: 3072           # 12 steps
schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1}
mixture:
  - {domain: books, proportion: 0.5, packing: long}
  - {domain: web, proportion: 0.5, packing: short}
)";

constexpr char kConfig[] = R"({"model_type": "llama", "vocab_size": 256, "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "max_position_embeddings": 128, "initializer_range": 0.05,
  "bos_token_id": 1, "eos_token_id": 2})";

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

struct Datamixer {
  std::unique_ptr<Subprocess> process;
  std::string address;
};

Datamixer StartDatamixer(const std::string& store_dir) {
  auto service = testing::StartService(
      {kDatamixer, "--store=" + store_dir, "--address=127.0.0.1:0", "--metrics-address=off"});
  EXPECT_OK(service);
  if (!service.ok()) return {};
  return {std::move(service->process), service->address};
}

// What every test shares: the files and one datamixer on the corpus.
struct Fixture {
  std::string dir;
  std::string stage;
  std::string config;
  Datamixer datamixer;
};

Fixture& Shared() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    f->dir = testing::MakeTempDir();
    EXPECT_OK(testing::WriteLearnableCorpus(f->dir + "/store"));
    f->stage = WriteFile(f->dir, "stage.yaml", kStage);
    f->config = WriteFile(f->dir, "config.json", kConfig);
    f->datamixer = StartDatamixer(f->dir + "/store");
    return f;
  }();
  return *fixture;
}

// Sets "--name=value" flags in `argv`, replacing the same flag's earlier value.
void SetFlags(std::vector<std::string>& argv, const std::vector<std::string>& flags) {
  for (const std::string& flag : flags) {
    const std::string name = flag.substr(0, flag.find('=') + 1);
    auto same = std::find_if(argv.begin(), argv.end(), [&](const std::string& arg) {
      return name.back() == '=' && absl::StartsWith(arg, name);
    });
    if (same != argv.end()) {
      *same = flag;
    } else {
      argv.push_back(flag);
    }
  }
}

std::vector<std::string> TrainCommand(const std::string& checkpoint_dir, int nproc,
                                      const std::vector<std::string>& flags = {},
                                      const std::string& datamixer = "") {
  const Fixture& f = Shared();
  std::vector<std::string> argv = {
      kProlongctl,
      "train",
      "--local",
      absl::StrCat("--nproc=", nproc),
      "--datamixer=" + (datamixer.empty() ? f.datamixer.address : datamixer),
      "--stage=" + f.stage,
      "--seed=3",
      "--model-config=" + f.config,
      "--checkpoint-dir=" + checkpoint_dir,
      "--checkpoint-every=2",
      "--deterministic",
      "--rendezvous-timeout-seconds=60"};
  SetFlags(argv, flags);
  return argv;
}

struct StepLine {
  int64_t step = 0;
  double loss = 0;
  double lr = 0;
};

// Rank 0's step lines in a launcher's stderr.
std::vector<StepLine> StepLines(const std::string& text) {
  static const std::regex pattern(R"(\[rank 0\] .*\] step (\d+)/(\d+) loss (\S+) lr (\S+) )");
  std::vector<StepLine> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::cmatch match;
    const std::string copy(line);
    if (!std::regex_search(copy.c_str(), match, pattern)) continue;
    StepLine step;
    EXPECT_TRUE(absl::SimpleAtoi(match[1].str(), &step.step));
    EXPECT_TRUE(absl::SimpleAtod(match[3].str(), &step.loss)) << copy;
    EXPECT_TRUE(absl::SimpleAtod(match[4].str(), &step.lr)) << copy;
    lines.push_back(step);
  }
  return lines;
}

// The pid the launcher reports for `rank`; -1 if not started yet.
pid_t WorkerPid(const std::string& launcher_stderr, int rank) {
  const std::regex pattern(absl::StrCat(R"(rank )", rank, R"( started \(pid (\d+)\))"));
  std::smatch match;
  int pid = -1;
  if (std::regex_search(launcher_stderr, match, pattern)) {
    EXPECT_TRUE(absl::SimpleAtoi(match[1].str(), &pid));
  }
  return pid;
}

std::string LastLine(const std::string& text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines.empty() ? "" : std::string(lines.back());
}

int64_t NewestStep(const std::string& checkpoint_dir) {
  auto listed = checkpoint::ListCheckpoints(checkpoint_dir);
  EXPECT_OK(listed);
  return !listed.ok() || listed->empty() ? 0 : listed->back().step;
}

std::string StepDir(const std::string& checkpoint_dir, int64_t step) {
  return checkpoint_dir + "/" + checkpoint::StepDirName(step);
}

std::string Bytes(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  EXPECT_OK(bytes);
  return bytes.ok() ? *bytes : "";
}

// A run that is never interrupted, with rank 1's /metrics scraped while it trains.
constexpr double kPeakTflops = 0.01;
struct CleanRun {
  int exit_code = -1;
  std::string stdout_text, stderr_text;
  std::string checkpoint_dir;
  std::string metrics;  // the last page scraped
  double seconds = 0;
};

const CleanRun& Clean() {
  static const CleanRun* run = [] {
    auto* r = new CleanRun;
    r->checkpoint_dir = testing::MakeTempDir() + "/checkpoints";
    const absl::Time start = absl::Now();
    // A CPU has no known peak: one is given so that MFU is reported.
    auto process = Subprocess::Start(
        TrainCommand(r->checkpoint_dir, 2, {absl::StrCat("--peak-tflops=", kPeakTflops)}));
    EXPECT_OK(process);
    if (!process.ok()) return r;
    std::string metrics_address;
    while (!(*process)->Wait(absl::Milliseconds(20)).ok()) {
      if (metrics_address.empty()) {
        static const std::regex ready(R"(\[rank 1\] trainer listening: grpc=\S+ metrics=(\S+))");
        std::smatch match;
        const std::string out = (*process)->Stdout();
        if (std::regex_search(out, match, ready)) metrics_address = match[1].str();
        continue;
      }
      absl::StatusOr<std::string> page =
          HttpGet(metrics_address, "/metrics", absl::Milliseconds(500));
      if (page.ok()) r->metrics = *page;
    }
    r->seconds = absl::ToDoubleSeconds(absl::Now() - start);
    r->exit_code = *(*process)->Wait(absl::Seconds(1));
    r->stdout_text = (*process)->Stdout();
    r->stderr_text = (*process)->Stderr();
    return r;
  }();
  return *run;
}

double MetricValue(const std::string& page, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(page, '\n')) {
    if (absl::ConsumePrefix(&line, series + " ")) {
      double value;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  return NAN;
}

TEST(TrainLocalTest, TwoRanksTrainThePlanToTheEnd) {
  const CleanRun& run = Clean();
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  std::cerr << "uninterrupted run of " << kSteps << " steps with 2 ranks: " << run.seconds
            << " s\n";
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "prolongctl train: all 2 ranks finished"));
  EXPECT_TRUE(absl::StrContains(run.stdout_text, "[rank 0] trainer listening: "));
  EXPECT_TRUE(absl::StrContains(run.stdout_text, "[rank 1] trainer listening: "));
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "[rank 1] "));

  const std::vector<StepLine> steps = StepLines(run.stderr_text);
  ASSERT_EQ(steps.size(), static_cast<size_t>(kSteps)) << run.stderr_text;
  for (int64_t i = 0; i < kSteps; ++i) {
    EXPECT_EQ(steps[i].step, i + 1);
    EXPECT_TRUE(std::isfinite(steps[i].loss)) << "step " << i + 1;
  }
  EXPECT_LT(steps.back().loss, steps.front().loss - 0.5) << run.stderr_text;

  auto listed = checkpoint::ListCheckpoints(run.checkpoint_dir);
  ASSERT_OK(listed);
  std::vector<int64_t> saved;
  for (const checkpoint::CheckpointRef& ref : *listed) {
    saved.push_back(ref.step);
    EXPECT_OK(checkpoint::VerifyCheckpoint(ref.path)) << ref.path;
  }
  EXPECT_EQ(saved, (std::vector<int64_t>{2, 4, 6, 8, 10, 12}));
  auto state = checkpoint::ReadTrainerState(StepDir(run.checkpoint_dir, kSteps));
  ASSERT_OK(state);
  EXPECT_EQ(state->step, kSteps);
  EXPECT_EQ(state->data_cursor.at("global_step"), absl::StrCat(kSteps));
  EXPECT_EQ(state->run.dp_size, 2);
  EXPECT_FALSE(state->data_cursor.at("plan_id").empty());
  EXPECT_FALSE(state->data_cursor.at("data_fingerprint").empty());

  ASSERT_FALSE(run.metrics.empty()) << "no /metrics page scraped while training";
  for (const char* series : {"prolong_trainer_step", "prolong_trainer_loss",
                             "prolong_trainer_learning_rate", "prolong_trainer_grad_norm",
                             "prolong_trainer_tokens_total", "prolong_trainer_tokens_per_second"}) {
    const double value = MetricValue(run.metrics, series);
    EXPECT_TRUE(std::isfinite(value)) << series << "\n" << run.metrics;
  }
  EXPECT_GT(MetricValue(run.metrics, R"(prolong_trainer_peak_memory_bytes{memory="host"})"),
            1 << 20)
      << run.metrics;
  EXPECT_EQ(MetricValue(run.metrics, R"(prolong_trainer_peak_memory_bytes{memory="device"})"), 0)
      << run.metrics;
  // Both set per step (a scrape may fall between the two, so they are not compared).
  EXPECT_GT(MetricValue(run.metrics, "prolong_trainer_model_flops_per_second"), 0) << run.metrics;
  EXPECT_GT(MetricValue(run.metrics, "prolong_trainer_mfu_ratio"), 0) << run.metrics;
  EXPECT_TRUE(std::regex_search(
      run.stderr_text,
      std::regex(
          R"(\] step 12/12 loss .* TFLOP/s/rank \S+ MFU [0-9.]+% peak_mem [0-9.]+GiB time )")))
      << run.stderr_text;
  EXPECT_TRUE(std::regex_search(
      run.stderr_text,
      std::regex(R"(\] stage \S+ done: 12 steps in [0-9.]+ s; the 12 steps of this )"
                 R"(run: [0-9]+ tokens/s, \S+ TFLOP/s/rank, MFU [0-9.]+%)")))
      << run.stderr_text;
}

// torchtitan's check of context parallelism: the same job split by sequence (cp = 2, either
// scheme) instead of by batch (dp = 2) gives the same losses step by step, up to the order of
// floating-point sums (the log prints 6 decimals; they agree to the last one printed).
TEST(TrainLocalTest, ContextParallelRunsLoseLikeTheDataParallelOne) {
  const CleanRun& clean = Clean();
  ASSERT_EQ(clean.exit_code, 0) << clean.stderr_text;
  const std::vector<StepLine> expected = StepLines(clean.stderr_text);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kSteps));
  for (const char* scheme : {"all-gather", "ring"}) {
    SCOPED_TRACE(scheme);
    const std::string dir = testing::MakeTempDir() + "/checkpoints";
    auto result = testing::Run(
        TrainCommand(dir, 2, {"--cp=2", absl::StrCat("--cp-scheme=", scheme)}), absl::Seconds(180));
    ASSERT_OK(result);
    ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
    const std::vector<StepLine> steps = StepLines(result->stderr_text);
    ASSERT_EQ(steps.size(), expected.size()) << result->stderr_text;
    for (size_t i = 0; i < steps.size(); ++i) {
      EXPECT_NEAR(steps[i].loss, expected[i].loss, 1e-5 * expected[i].loss) << "step " << i + 1;
    }
  }
}

TEST(TrainLocalTest, RunsKilledAtRandomMomentsEndBitForBitLikeAnUninterruptedOne) {
  const CleanRun& clean = Clean();
  ASSERT_EQ(clean.exit_code, 0) << clean.stderr_text;
  const std::string dir = testing::MakeTempDir() + "/checkpoints";
  const unsigned seed = std::random_device()();
  std::cerr << "interruption seed " << seed << "\n";
  std::mt19937 random(seed);
  auto uniform = [&](int low, int high) {
    return std::uniform_int_distribution<int>(low, high)(random);
  };

  int interrupted = 0;
  bool finished = false;
  for (int attempt = 0; attempt < 10 && !finished; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt, ", seed ", seed));
    const int64_t resume = NewestStep(dir);
    auto launcher = Subprocess::Start(TrainCommand(dir, 2));
    ASSERT_OK(launcher);
    // Up to four interruptions, each after a random step past the resume point, then a run to
    // the end. Kind 0: SIGTERM to the launcher (a graceful stop); 1: SIGKILL of one worker;
    // 2: SIGKILL of both.
    const int kind = attempt;
    if (attempt < 3 || (attempt == 3 && resume < kSteps - 2)) {
      const int64_t target = uniform(static_cast<int>(resume) + 1,
                                     static_cast<int>(std::min<int64_t>(kSteps - 1, resume + 4)));
      while (!(*launcher)->Wait(absl::Milliseconds(2)).ok()) {
        const std::vector<StepLine> steps = StepLines((*launcher)->Stderr());
        if (!steps.empty() && steps.back().step >= target) break;
      }
      absl::SleepFor(absl::Milliseconds(uniform(0, 40)));
      const std::string text = (*launcher)->Stderr();
      const int victim = uniform(0, 1);
      if (kind == 0) {
        (*launcher)->Signal(SIGTERM);
      } else if (kind == 1 || kind == 3) {
        const pid_t pid = WorkerPid(text, victim);
        ASSERT_GT(pid, 0) << text;
        kill(pid, SIGKILL);
      } else {
        for (int rank : {0, 1}) {
          const pid_t pid = WorkerPid(text, rank);
          ASSERT_GT(pid, 0) << text;
          kill(pid, SIGKILL);
        }
      }
    }
    absl::StatusOr<int> exit_code = (*launcher)->Wait(absl::Seconds(180));
    ASSERT_OK(exit_code);
    const std::string text = (*launcher)->Stderr();
    const std::vector<StepLine> steps = StepLines(text);
    std::cerr << "attempt " << attempt << ": resumed at step " << resume << ", trained to step "
              << (steps.empty() ? resume : steps.back().step) << ", exit code " << *exit_code
              << "\n";
    if (*exit_code == 0) {
      finished = true;
      break;
    }
    ++interrupted;
    if (kind == 0) {
      EXPECT_EQ(*exit_code, 128 + SIGTERM) << text;
      EXPECT_TRUE(absl::StrContains(text, "stopped by ")) << text;
    } else {
      EXPECT_EQ(*exit_code, 1) << text;
      EXPECT_TRUE(std::regex_search(
          LastLine(text),
          std::regex(
              R"(^prolongctl train: failed: rank [01] (was killed by signal 9|exited with code 1))")))
          << text;
    }
    if (resume > 0) {
      EXPECT_TRUE(absl::StrContains(text, absl::StrCat("resumed from ", StepDir(dir, resume))))
          << text;
    }
  }
  ASSERT_TRUE(finished);
  EXPECT_GE(interrupted, 2) << "the interruptions came too late to interrupt anything";
  EXPECT_EQ(NewestStep(dir), kSteps);
  for (const std::string file : {"model/model.safetensors", "optimizer.safetensors"}) {
    const std::string expected = Bytes(StepDir(clean.checkpoint_dir, kSteps) + "/" + file);
    ASSERT_FALSE(expected.empty());
    EXPECT_TRUE(Bytes(StepDir(dir, kSteps) + "/" + file) == expected)
        << file << " differs from the uninterrupted run's";
  }
}

// Removes the checkpoints after `step`, as if the run had stopped there.
void KeepCheckpointsUpTo(const std::string& checkpoint_dir, int64_t step) {
  auto listed = checkpoint::ListCheckpoints(checkpoint_dir);
  ASSERT_OK(listed);
  for (const checkpoint::CheckpointRef& ref : *listed) {
    if (ref.step > step) fs::remove_all(ref.path);
  }
  ASSERT_EQ(NewestStep(checkpoint_dir), step);
}

TEST(TrainLocalTest, ShardedOptimizerStateEndsLikeTheCleanRunAndResumesEitherWay) {
  const CleanRun& clean = Clean();
  ASSERT_EQ(clean.exit_code, 0) << clean.stderr_text;
  const std::string dir = testing::MakeTempDir() + "/checkpoints";
  auto expect_clean_end = [&](const std::string& what) {
    ASSERT_EQ(NewestStep(dir), kSteps) << what;
    for (const std::string file : {"model/model.safetensors", "optimizer.safetensors"}) {
      const std::string expected = Bytes(StepDir(clean.checkpoint_dir, kSteps) + "/" + file);
      ASSERT_FALSE(expected.empty());
      EXPECT_TRUE(Bytes(StepDir(dir, kSteps) + "/" + file) == expected)
          << what << ": " << file << " differs from the unsharded run's";
    }
  };
  // Sharded from the start.
  auto result =
      testing::Run(TrainCommand(dir, 2, {"--shard-optimizer-state=true"}), absl::Seconds(180));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
  expect_clean_end("sharded");

  // Its checkpoint of step 4 resumed without sharding.
  KeepCheckpointsUpTo(dir, 4);
  result = testing::Run(TrainCommand(dir, 2), absl::Seconds(180));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "resumed from " + StepDir(dir, 4)))
      << result->stderr_text;
  expect_clean_end("saved sharded, resumed unsharded");

  // The unsharded resume's checkpoint of step 8 resumed with sharding.
  KeepCheckpointsUpTo(dir, 8);
  result = testing::Run(TrainCommand(dir, 2, {"--shard-optimizer-state=true"}), absl::Seconds(180));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "resumed from " + StepDir(dir, 8)))
      << result->stderr_text;
  expect_clean_end("saved unsharded, resumed sharded");
}

TEST(TrainLocalTest, ResumingOnOtherDataOrAnotherSeedIsRefused) {
  const CleanRun& clean = Clean();
  ASSERT_EQ(clean.exit_code, 0) << clean.stderr_text;
  const std::string dir = testing::MakeTempDir();
  fs::copy(clean.checkpoint_dir, dir + "/checkpoints", fs::copy_options::recursive);
  auto state = checkpoint::ReadTrainerState(StepDir(dir + "/checkpoints", kSteps));
  ASSERT_OK(state);
  const std::string old_fingerprint = state->data_cursor.at("data_fingerprint");
  const std::string old_plan = state->data_cursor.at("plan_id");

  ASSERT_OK(testing::WriteLearnableCorpus(dir + "/store", /*one_more_document=*/true));
  Datamixer other = StartDatamixer(dir + "/store");
  ASSERT_FALSE(other.address.empty());
  auto result =
      testing::Run(TrainCommand(dir + "/checkpoints", 1, {}, other.address), absl::Seconds(120));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1) << result->stderr_text;
  const std::regex refusal(
      R"(\[rank 0\] trainer: refusing to resume from \S+/step-00000012: it was trained on data fingerprint (\S+) \(plan (\S+)\), but the datamixer at \S+ now holds data fingerprint (\S+) \(plan (\S+)\);)");
  std::smatch match;
  const std::string text = result->stderr_text;
  ASSERT_TRUE(std::regex_search(text, match, refusal)) << text;
  EXPECT_EQ(match[1].str(), old_fingerprint);
  EXPECT_EQ(match[2].str(), old_plan);
  EXPECT_NE(match[3].str(), old_fingerprint);
  EXPECT_NE(match[4].str(), old_plan);
  // A refused resume is the user's to fix: the exit code says not to retry it.
  EXPECT_EQ(LastLine(text), "prolongctl train: failed: rank 0 exited with code 2");

  // The same data with another seed: another plan.
  result = testing::Run(TrainCommand(dir + "/checkpoints", 1, {"--seed=4"}), absl::Seconds(120));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1) << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(
      result->stderr_text,
      absl::StrCat("it was trained on plan ", old_plan, ", but stage 'local-test' with --seed 4 ")))
      << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "the stage spec or the seed changed"));
  // Nothing was written.
  EXPECT_EQ(NewestStep(dir + "/checkpoints"), kSteps);
  EXPECT_EQ(Bytes(StepDir(dir + "/checkpoints", kSteps) + "/model/model.safetensors"),
            Bytes(StepDir(clean.checkpoint_dir, kSteps) + "/model/model.safetensors"));
}

// AdamW's step count for `parameter` in CHECKPOINT/optimizer.safetensors (an int64 scalar
// tensor "step/NAME"), read from the file's header and data; -1 if absent.
int64_t OptimizerStepCount(const std::string& checkpoint, const std::string& parameter) {
  const std::string bytes = Bytes(checkpoint + "/" + checkpoint::kOptimizerFile);
  if (bytes.size() < 8) return -1;
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = header_size << 8 | static_cast<uint8_t>(bytes[i]);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  const auto entry = header.find("step/" + parameter);
  if (entry == header.end() || (*entry)["dtype"] != "I64") return -1;
  const size_t offset = 8 + header_size + (*entry)["data_offsets"][0].get<size_t>();
  int64_t count = 0;
  std::memcpy(&count, bytes.data() + offset, sizeof(count));
  return count;
}

// ProLong's stage 2 in miniature: 4 more steps on another mixture with another RoPE theta,
// started from the first stage's checkpoint directory.
std::string SecondStage(bool reset_optimizer_state) {
  return absl::StrCat(R"(name: stage-2
seq_len: 64
batch_tokens: 256
total_tokens: 1024
rope_theta: 20000
schedule: {peak_lr: 0.005, warmup_fraction: 0.25, shape: cosine, min_lr_ratio: 0.1}
mixture:
  - {domain: books, proportion: 0.25, packing: long}
  - {domain: web, proportion: 0.75, packing: short}
reset_optimizer_state: )",
                      reset_optimizer_state ? "true" : "false", "\n");
}

TEST(TrainLocalTest, ASecondStageCarriesTheOptimizerStateAndRestartsTheSchedule) {
  const CleanRun& clean = Clean();
  ASSERT_EQ(clean.exit_code, 0) << clean.stderr_text;
  const std::vector<StepLine> first_stage = StepLines(clean.stderr_text);
  ASSERT_FALSE(first_stage.empty());
  auto first_state = checkpoint::ReadTrainerState(StepDir(clean.checkpoint_dir, kSteps));
  ASSERT_OK(first_state);
  ASSERT_EQ(OptimizerStepCount(StepDir(clean.checkpoint_dir, kSteps), "model.norm.weight"), kSteps);

  for (const bool reset : {false, true}) {
    SCOPED_TRACE(reset ? "reset_optimizer_state" : "optimizer state kept");
    const std::string dir = testing::MakeTempDir();
    const std::string stage = WriteFile(dir, "stage-2.yaml", SecondStage(reset));
    std::vector<std::string> argv = TrainCommand(
        dir + "/checkpoints", 2, {"--stage=" + stage, "--init-checkpoint=" + clean.checkpoint_dir});
    // Sharded, each rank takes its own share of the first stage's AdamW state.
    if (!reset) argv.push_back("--shard-optimizer-state");
    argv.erase(std::remove_if(
                   argv.begin(), argv.end(),
                   [](const std::string& arg) { return absl::StartsWith(arg, "--model-config="); }),
               argv.end());
    auto result = testing::Run(argv, absl::Seconds(180));
    ASSERT_OK(result);
    ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
    const std::string from = StepDir(clean.checkpoint_dir, kSteps);
    EXPECT_TRUE(absl::StrContains(
        result->stderr_text,
        reset
            ? absl::StrCat("stage stage-2 starts from the weights of ", from, " (run step ", kSteps,
                           ") with fresh AdamW state (reset_optimizer_state)")
            : absl::StrCat("stage stage-2 starts from ", from, " (stage 'local-test', run step ",
                           kSteps, "): weights and AdamW state carried over, schedule restarted")))
        << result->stderr_text;

    // The schedule starts again with its own warmup (step 0 runs at lr 0), then its peak; the
    // weights are the first stage's, so the loss starts where that stage ended, not afresh.
    const std::vector<StepLine> steps = StepLines(result->stderr_text);
    ASSERT_EQ(steps.size(), 4u) << result->stderr_text;
    EXPECT_EQ(steps[0].lr, 0);
    EXPECT_NEAR(steps[1].lr, 0.005, 1e-9);
    EXPECT_LT(steps[0].loss, first_stage.front().loss - 0.5) << result->stderr_text;

    // The run's step count goes on; the new stage's data cursor and schedule are its own.
    const std::string last = StepDir(dir + "/checkpoints", kSteps + 4);
    auto state = checkpoint::ReadTrainerState(last);
    ASSERT_OK(state);
    EXPECT_EQ(state->step, kSteps + 4);
    EXPECT_EQ(state->stage_name, "stage-2");
    EXPECT_EQ(state->schedule.at("stage_step"), "4");
    EXPECT_EQ(state->data_cursor.at("global_step"), "4");
    EXPECT_NE(state->data_cursor.at("plan_id"), first_state->data_cursor.at("plan_id"));
    // AdamW's moments carried over count every step of the run (gathered from the rank that
    // keeps them); reset ones only this stage's.
    EXPECT_EQ(OptimizerStepCount(last, "model.norm.weight"), reset ? 4 : kSteps + 4);
    EXPECT_TRUE(absl::StrContains(Bytes(last + "/model/config.json"), "20000"));
  }

  // The second stage pointed at the first one's directory is refused, saying what to do.
  const std::string dir = testing::MakeTempDir();
  fs::copy(clean.checkpoint_dir, dir + "/checkpoints", fs::copy_options::recursive);
  std::vector<std::string> argv = TrainCommand(
      dir + "/checkpoints", 1, {"--stage=" + WriteFile(dir, "stage-2.yaml", SecondStage(false))});
  auto result = testing::Run(argv, absl::Seconds(120));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1) << result->stderr_text;
  const std::string from = StepDir(dir + "/checkpoints", kSteps);
  EXPECT_TRUE(absl::StrContains(
      result->stderr_text,
      absl::StrCat("refusing to resume from ", from,
                   ": it is a checkpoint of stage 'local-test', and this run trains stage "
                   "'stage-2'; give each stage its own --checkpoint-dir, and start this one from "
                   "that checkpoint with --init-checkpoint ",
                   from)))
      << result->stderr_text;
  EXPECT_EQ(NewestStep(dir + "/checkpoints"), kSteps);
}

TEST(TrainLocalTest, ANonFiniteLossFailsAndKeepsTheLastGoodCheckpoint) {
  const std::string dir = testing::MakeTempDir() + "/checkpoints";
  // Step 5 (0-based 4) gets non-finite weights; steps 2 and 4 were checkpointed.
  auto result =
      testing::Run(TrainCommand(dir, 2, {"--inject-nonfinite-at-step=4"}), absl::Seconds(120));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1) << result->stderr_text;
  // Both ranks fail at the step; whichever exits first is reported and the other is stopped.
  EXPECT_TRUE(std::regex_search(result->stderr_text,
                                std::regex(R"(\[rank [01]\] trainer: step 5/12: non-finite loss)")))
      << result->stderr_text;
  EXPECT_TRUE(
      absl::StrContains(result->stderr_text, "; the newest checkpoint is " + StepDir(dir, 4)))
      << result->stderr_text;
  EXPECT_TRUE(
      std::regex_search(LastLine(result->stderr_text),
                        std::regex(R"(^prolongctl train: failed: rank [01] exited with code 1$)")))
      << result->stderr_text;
  auto listed = checkpoint::ListCheckpoints(dir);
  ASSERT_OK(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->back().step, 4);
  EXPECT_OK(checkpoint::VerifyCheckpoint(listed->back().path));
}

TEST(TrainLocalTest, BadFlagsAndMissingFilesAreOneClearLine) {
  const Fixture& f = Shared();
  const std::string dir = testing::MakeTempDir();
  const std::string missing = dir + "/missing.yaml";

  // The launcher checks the job once, before starting anything.
  std::vector<std::string> argv = TrainCommand(dir + "/checkpoints", 2, {"--stage=" + missing});
  auto result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->stderr_text, "prolongctl train: --stage: " + missing + ": cannot open\n");

  argv = TrainCommand(dir + "/checkpoints", 3, {"--cp=2"});
  result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->stderr_text, "prolongctl train: --cp (2) must divide --nproc (3)\n");

  argv = TrainCommand(dir + "/checkpoints", 2);
  argv.erase(std::find(argv.begin(), argv.end(), "--local"));
  result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_TRUE(absl::StartsWith(result->stderr_text, "prolongctl train: only --local is supported"))
      << result->stderr_text;

  argv = TrainCommand(dir + "/checkpoints", 2, {"--cp=2", "--cp-scheme=tree"});
  result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_NE(result->exit_code, 0);
  for (const char* part : {"--cp-scheme", "tree", "all-gather", "ring"}) {
    EXPECT_TRUE(absl::StrContains(result->stderr_text, part)) << result->stderr_text;
  }

  argv = TrainCommand(dir + "/checkpoints", 2, {"--shard-weights", "--shard-group-size=3"});
  result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->stderr_text,
            "prolongctl train: --shard-weights: shard_group_size (3) must divide the world size "
            "(2), or be 0 for the whole world\n");

  argv = TrainCommand(dir + "/checkpoints", 2, {"--no-such-flag=1"});
  result = testing::Run(argv, absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "--no-such-flag")) << result->stderr_text;

  // The worker itself; its exit code says a retry would not help (common/exit_codes.h).
  result = testing::Run({kTrainer, "--rank=0", "--world=1", "--stage=" + missing,
                         "--model-config=" + f.config, "--checkpoint-dir=" + dir},
                        absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(result->stderr_text, "trainer: --stage: " + missing + ": cannot open\n");

  result = testing::Run({kTrainer, "--rank=0", "--world=2", "--dp=2", "--rendezvous=127.0.0.1:1",
                         "--stage=" + f.stage, "--checkpoint-dir=" + dir},
                        absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(result->stderr_text,
            "trainer: give exactly one of --model-config (a fresh model) and --init-checkpoint "
            "(a model directory or training checkpoint)\n");
}

// --plan-memory trains nothing and prints each part; a layout over the memory a rank has is
// refused before any process starts, with or without --plan-memory.
TEST(TrainLocalTest, PlanMemoryPrintsThePartsAndALayoutThatDoesNotFitIsRefused) {
  const std::string dir = testing::MakeTempDir();
  auto result =
      testing::Run(TrainCommand(dir, 2, {"--plan-memory", "--shard-weights"}), absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  for (const char* part :
       {"memory per rank: stage local-test, 64 tokens a sequence, dp 2 x cp 1", "weights (float32)",
        "gradients (float32)", "optimizer state (AdamW)", "gathered weights", "kept activations",
        "one layer's working set", "loss blocks", "peak per rank"}) {
    EXPECT_TRUE(absl::StrContains(result->stdout_text, part)) << part << "\n"
                                                              << result->stdout_text;
  }
  EXPECT_FALSE(absl::StrContains(result->stderr_text, "started")) << result->stderr_text;
  EXPECT_EQ(NewestStep(dir), 0);

  for (const bool plan_only : {true, false}) {
    std::vector<std::string> flags = {"--memory-per-rank-gb=0.0001"};
    if (plan_only) flags.push_back("--plan-memory");
    result = testing::Run(TrainCommand(dir, 2, flags), absl::Seconds(60));
    ASSERT_OK(result);
    EXPECT_EQ(result->exit_code, 1);
    EXPECT_TRUE(
        absl::StartsWith(LastLine(result->stderr_text), "prolongctl train: the layout needs "))
        << result->stderr_text;
    EXPECT_TRUE(absl::StrContains(result->stderr_text,
                                  "over the 0.0 GB a rank has "
                                  "(--memory-per-rank-gb); shard the weights"))
        << result->stderr_text;
    EXPECT_FALSE(absl::StrContains(result->stderr_text, "started")) << result->stderr_text;
  }
  EXPECT_EQ(NewestStep(dir), 0);
}

TEST(TrainLocalTest, ARankThatNeverComesIsNamed) {
  const Fixture& f = Shared();
  const std::string dir = testing::MakeTempDir();
  // Rank 0 hosts the store; ranks 1 and 2 are never started.
  auto result = testing::Run(
      {kTrainer, "--rank=0", "--world=3", "--dp=3", "--rendezvous=127.0.0.1:0", "--host-rendezvous",
       "--rendezvous-timeout-seconds=2", "--datamixer=" + f.datamixer.address, "--stage=" + f.stage,
       "--model-config=" + f.config, "--checkpoint-dir=" + dir},
      absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  std::smatch match;
  ASSERT_TRUE(std::regex_search(result->stdout_text, match, std::regex(R"(rendezvous=(\S+))")))
      << result->stdout_text;
  EXPECT_EQ(LastLine(result->stderr_text),
            absl::StrCat("trainer: rendezvous at ", match[1].str(),
                         ": ranks 1, 2 of 3 did not arrive within 2s"))
      << result->stderr_text;
}

TEST(TrainLocalTest, AnUnreachableDatamixerIsNamed) {
  const std::string dir = testing::MakeTempDir();
  auto result = testing::Run(TrainCommand(dir, 1, {"--datamixer-timeout-seconds=1"}, "127.0.0.1:1"),
                             absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(
      result->stderr_text,
      "[rank 0] trainer: datamixer 127.0.0.1:1: unreachable (no answer to PlanStage within 1s)\n"))
      << result->stderr_text;
  EXPECT_EQ(LastLine(result->stderr_text), "prolongctl train: failed: rank 0 exited with code 1");
}

TEST(TrainLocalTest, AskingForAGpuInACpuBuildIsNamed) {
  const std::string dir = testing::MakeTempDir();
  auto result = testing::Run(TrainCommand(dir, 1, {"--device=cuda"}), absl::Seconds(60));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result->stderr_text,
                                "[rank 0] trainer: --device cuda: this trainer was built without "
                                "CUDA (build with --config=cuda against a CUDA LibTorch)\n"))
      << result->stderr_text;
  EXPECT_EQ(NewestStep(dir), 0);
}

}  // namespace
}  // namespace prolong
