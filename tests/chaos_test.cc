// Chaos: one two-stage run with a datamixer, a scheduler and an evaluator as real processes,
// through 20 SIGKILLs at random moments spread over the trainer workers (10), the datamixer (5,
// started again on its address at once, as a supervisor would) and the scheduler (5, started
// again on its state). The run is a tiny Llama: 256 steps at 64 tokens on dp 2, then 192 at 128
// tokens on cp 2 with the RoPE base raised, a checkpoint every step, each stage's last one
// evaluated; deterministic.
//   - it ends SUCCEEDED with final weights and AdamW state bitwise those of the same run
//     uninterrupted, and with the same evaluation scores;
//   - three kills in four wait for a new checkpoint first, then come at a random moment of the
//     next three steps (mid-step, mid-save, at a stage's end), so the run progresses; every
//     fourth comes at a random moment of the 1.5 s after the one before, mostly the recovery
//     from it (gang start-up, rendezvous, planning, the datamixer or the scheduler coming back);
//   - the log lists every kill with its moment and the time until the run's next checkpoint,
//     and the time the run lost per kill against the uninterrupted one.
// PROLONG_CHAOS_SEED=N repeats a run's targets and delays.

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "tests/run_control.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"
#include "trainer/checkpoint/checkpoint_store.h"

namespace prolong {
namespace {

using testing::ServiceProcess;

constexpr int64_t kShortSteps = 256;
constexpr int64_t kLongSteps = 192;
constexpr int kKills = 20;

std::string Spec(const std::string& name, const std::string& checkpoint_dir,
                 const std::string& tokenizer) {
  return absl::StrCat("name: ", name, "\nseed: 3\ndeterministic: true\n", testing::kTinyModelYaml,
                      "  tokenizer: {path: ", tokenizer, R"(}
stages:
  - name: short
    seq_len: 64
    batch_tokens: 256
    total_tokens: )",
                      kShortSteps * 256, R"(
    schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1}
    allow_repetition: true
    mixture: [{domain: books, proportion: 0.5, packing: long},
              {domain: web, proportion: 0.5, packing: short}]
  - name: long
    seq_len: 128
    batch_tokens: 256
    total_tokens: )",
                      kLongSteps * 256, R"(
    rope_theta: 40000
    schedule: {peak_lr: 0.005, warmup_fraction: 0.25, shape: cosine, min_lr_ratio: 0.1}
    allow_repetition: true
    mixture: [{domain: books, proportion: 0.5, packing: long},
              {domain: web, proportion: 0.5, packing: short}]
    layout: {data_parallel: 1, context_parallel: 2}
resources: {data_parallel: 2}
checkpoint: {directory: )",
                      checkpoint_dir, R"(, every_steps: 1, keep_last: 2}
fault: {max_restarts: 40, heartbeat_timeout: 5s, rendezvous_timeout: 60s}
evaluation:
  on_checkpoint: true
  raw_checkpoints: {stage_ends: true}
  spec:
    tasks: [{name: json_kv, input_lengths: [1024], num_examples: 2, chat_template: off}]
    max_new_tokens: 16
)");
}

// The run's progress: the newest checkpoint's step over both stages (stage 2's steps count on
// from stage 1's), with the moment each step's checkpoint was first seen, sampled every 20 ms.
class Progress {
 public:
  explicit Progress(std::string checkpoint_dir)
      : dir_(std::move(checkpoint_dir)), thread_([this] { Sample(); }) {}
  ~Progress() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  int64_t Step() {
    absl::MutexLock lock(&mu_);
    return seen_.empty() ? 0 : seen_.back().first;
  }
  // When the first checkpoint past `step` was seen, if one was.
  std::optional<absl::Time> FirstPast(int64_t step) {
    absl::MutexLock lock(&mu_);
    for (const auto& [seen_step, time] : seen_) {
      if (seen_step > step) return time;
    }
    return std::nullopt;
  }
  // The median time between consecutive checkpoints within a stage.
  absl::Duration MedianStepTime() {
    absl::MutexLock lock(&mu_);
    std::vector<absl::Duration> gaps;
    for (size_t i = 1; i < seen_.size(); ++i) {
      if (seen_[i].first == seen_[i - 1].first + 1 && seen_[i].first != kShortSteps + 1) {
        gaps.push_back(seen_[i].second - seen_[i - 1].second);
      }
    }
    if (gaps.empty()) return absl::ZeroDuration();
    std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
    return gaps[gaps.size() / 2];
  }

 private:
  void Sample() {
    while (true) {
      const int64_t step = std::max(testing::NewestCheckpointStep(dir_ + "/short"),
                                    testing::NewestCheckpointStep(dir_ + "/long"));
      absl::MutexLock lock(&mu_);
      if (seen_.empty() || step > seen_.back().first) seen_.emplace_back(step, absl::Now());
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(20))) return;
    }
  }

  const std::string dir_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<int64_t, absl::Time>> seen_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    tokenizer_ = testing::WriteByteTokenizer(dir_);
    ASSERT_OK(testing::WriteLearnableCorpus(dir_ + "/store"));
    StartDatamixer("127.0.0.1:0");
    auto evaluator =
        testing::StartService({testing::kEvaluatorBinary, "--store=" + dir_ + "/results",
                               "--device=cpu", "--address=127.0.0.1:0", "--metrics-address=off"});
    ASSERT_OK(evaluator);
    evaluator_ = *std::move(evaluator);
    StartScheduler();
  }

  void StartDatamixer(const std::string& address) {
    auto datamixer = testing::StartService({testing::kDatamixerBinary, "--store=" + dir_ + "/store",
                                            "--address=" + address, "--metrics-address=off"});
    ASSERT_OK(datamixer);
    datamixer_ = *std::move(datamixer);
  }

  void StartScheduler() {
    auto scheduler = testing::StartService(
        {testing::kSchedulerBinary, "--state-dir=" + dir_ + "/scheduler", "--address=127.0.0.1:0",
         "--metrics-address=off",
         "--trainer-binary=" + std::filesystem::absolute(testing::kTrainerBinary).string(),
         "--datamixer=" + datamixer_.address, "--evaluator=" + evaluator_.address,
         "--heartbeat-interval-ms=200", "--restart-backoff-ms=200"});
    ASSERT_OK(scheduler);
    scheduler_ = *std::move(scheduler);
  }

  // Submits the run writing into `name`'s checkpoint directory; its id.
  std::string SubmitRun(const std::string& name) {
    const std::string spec = dir_ + "/" + name + ".yaml";
    std::ofstream(spec) << Spec(name, dir_ + "/" + name, tokenizer_);
    return testing::Submit(scheduler_, spec);
  }

  // Waits for the run to end; its final state.
  v1::Run AwaitEnd(const std::string& run_id) {
    const testing::RunResult watched =
        testing::Ctl(scheduler_, {"watch", run_id}, absl::Seconds(600));
    EXPECT_EQ(watched.exit_code, 0) << watched.stdout_text << scheduler_.process->Stderr();
    return testing::GetRun(scheduler_, run_id);
  }

  // SIGKILLs the service and waits for it to be gone.
  static void Kill(ServiceProcess& service) {
    service.process->Signal(SIGKILL);
    ASSERT_OK(service.process->Wait(absl::Seconds(10)).status());
  }

  // SIGKILLs one live worker of the run's current gang, waiting for the gang to register; when.
  absl::Time KillAWorker(const std::string& run_id, std::mt19937_64& random) {
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      int64_t attempt = 0;
      if (absl::SimpleAtoi(testing::RunField(scheduler_, run_id, "attempt"), &attempt)) {
        std::vector<pid_t> live = testing::WorkerPids(*scheduler_.process, attempt, run_id);
        live.erase(std::remove_if(live.begin(), live.end(),
                                  [](pid_t pid) { return !testing::Alive(pid); }),
                   live.end());
        if (!live.empty() && kill(live[random() % live.size()], SIGKILL) == 0) return absl::Now();
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "no live worker of " << run_id << " for 120 s\n"
                  << scheduler_.process->Stderr();
    return absl::Now();
  }

  std::string dir_;
  std::string tokenizer_;
  ServiceProcess datamixer_;
  ServiceProcess evaluator_;
  ServiceProcess scheduler_;
};

// How many bytes of the two files differ (a length difference counts whole).
int64_t BytesOfDifference(const std::string& path_a, const std::string& path_b) {
  absl::StatusOr<std::string> a = ReadFile(path_a), b = ReadFile(path_b);
  EXPECT_OK(a);
  EXPECT_OK(b);
  if (!a.ok() || !b.ok()) return -1;
  int64_t differ = std::abs(static_cast<int64_t>(a->size()) - static_cast<int64_t>(b->size()));
  for (size_t i = 0; i < std::min(a->size(), b->size()); ++i) differ += (*a)[i] != (*b)[i];
  return differ;
}

// Each evaluated checkpoint's scores, "stage@step" -> category -> score.
std::map<std::string, std::map<std::string, double>> Scores(const v1::Run& run) {
  std::map<std::string, std::map<std::string, double>> scores;
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    EXPECT_EQ(evaluation.failure(), "") << evaluation.ShortDebugString();
    auto& categories = scores[absl::StrCat(evaluation.stage(), "@", evaluation.step())];
    for (const auto& [category, score] : evaluation.category_scores()) {
      categories[category] = score;
    }
  }
  return scores;
}

TEST_F(ChaosTest, TwentyKillsLoseNoRunAndNoByte) {
  // The run uninterrupted: the bytes and scores to end with, and its pace.
  absl::Time started = absl::Now();
  const std::string calm_id = SubmitRun("calm");
  absl::Duration calm_step;
  {
    Progress progress(dir_ + "/calm");
    const v1::Run calm = AwaitEnd(calm_id);
    ASSERT_EQ(calm.state(), v1::RUN_STATE_SUCCEEDED) << calm.message();
    calm_step = progress.MedianStepTime();
  }
  const absl::Duration calm_time = absl::Now() - started;

  uint64_t seed = absl::ToUnixNanos(absl::Now());
  if (const char* chosen = std::getenv("PROLONG_CHAOS_SEED")) {
    ASSERT_TRUE(absl::SimpleAtoi(chosen, &seed)) << chosen;
  }
  std::mt19937_64 random(seed);
  std::vector<std::string> targets;
  for (const auto& [target, count] :
       {std::pair{"worker", 10}, {"datamixer", 5}, {"scheduler", 5}}) {
    targets.insert(targets.end(), count, target);
  }
  std::shuffle(targets.begin(), targets.end(), random);

  struct Killed {
    std::string target;
    bool in_recovery;
    absl::Duration after_start;
    int64_t step;  // the newest checkpoint's just after it
    absl::Time when;
  };
  std::vector<Killed> kills;
  started = absl::Now();
  const std::string run_id = SubmitRun("chaos");
  Progress progress(dir_ + "/chaos");
  for (int k = 0; k < kKills; ++k) {
    const bool in_recovery = k % 4 == 3;
    if (!in_recovery) {
      const int64_t after = kills.empty() ? 0 : kills.back().step;
      const absl::Time deadline = absl::Now() + absl::Seconds(180);
      while (progress.Step() <= after && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      ASSERT_GT(progress.Step(), after) << "no checkpoint for 180 s after kill " << k << "\n"
                                        << scheduler_.process->Stderr();
    }
    // Within the next few steps, or within a gang's start-up (about a second).
    absl::SleepFor(in_recovery
                       ? absl::Milliseconds(random() % 1500)
                       : absl::Microseconds(random() % absl::ToInt64Microseconds(
                                                           3 * calm_step + absl::Milliseconds(1))));
    ASSERT_LT(progress.Step(), kShortSteps + kLongSteps)
        << "the run trained to its end after " << k << " kills: make it longer";
    Killed& killed = kills.emplace_back();
    killed.target = targets[k];
    killed.in_recovery = in_recovery;
    auto killed_now = [&](absl::Time when) {
      killed.when = when;
      killed.after_start = when - started;
      killed.step = progress.Step();
    };
    if (killed.target == "worker") {
      killed_now(KillAWorker(run_id, random));  // once the gang is up, if it was not
    } else if (killed.target == "datamixer") {
      const std::string address = datamixer_.address;
      killed_now(absl::Now());
      Kill(datamixer_);
      StartDatamixer(address);
    } else {
      killed_now(absl::Now());
      Kill(scheduler_);
      StartScheduler();
    }
    if (HasFailure()) return;
  }
  const v1::Run chaos = AwaitEnd(run_id);
  const absl::Duration chaos_time = absl::Now() - started;
  // What the run went through, first, so that a failure shows it too.
  std::cout << absl::StrFormat("chaos seed %d; uninterrupted: %.1f s, a checkpoint every %.2f s\n",
                               seed, absl::ToDoubleSeconds(calm_time),
                               absl::ToDoubleSeconds(calm_step));
  std::cout << " kill  target     moment                at    step  next checkpoint\n";
  for (size_t k = 0; k < kills.size(); ++k) {
    const Killed& killed = kills[k];
    const std::optional<absl::Time> next = progress.FirstPast(killed.step);
    std::cout << absl::StrFormat(
        "%5d  %-9s  %-20s  %5.1f s  %4d  %s\n", k + 1, killed.target,
        killed.in_recovery ? "after the last kill" : "after a checkpoint",
        absl::ToDoubleSeconds(killed.after_start), killed.step,
        next ? absl::StrFormat("+%.1f s", absl::ToDoubleSeconds(*next - killed.when)) : "-");
  }
  ASSERT_EQ(chaos.state(), v1::RUN_STATE_SUCCEEDED) << chaos.message();

  // Bitwise the uninterrupted run's weights, AdamW state and scores.
  const std::string last = checkpoint::StepDirName(kShortSteps + kLongSteps);
  int64_t difference = 0;
  for (const std::string file : {"model/model.safetensors", "optimizer.safetensors"}) {
    const int64_t differ = BytesOfDifference(absl::StrCat(dir_, "/chaos/long/", last, "/", file),
                                             absl::StrCat(dir_, "/calm/long/", last, "/", file));
    EXPECT_EQ(differ, 0) << file << " differs from the uninterrupted run's";
    difference += differ;
  }
  const auto scores = Scores(chaos);
  EXPECT_EQ(scores.size(), 2u) << chaos.ShortDebugString();
  EXPECT_EQ(scores, Scores(testing::GetRun(scheduler_, calm_id)));

  std::cout << absl::StrFormat(
      "with %d kills: %.1f s, %d restarts, state %s, bytes of difference %d; %.2f s lost per "
      "kill\n",
      kKills, absl::ToDoubleSeconds(chaos_time), chaos.restarts(), v1::RunState_Name(chaos.state()),
      difference, absl::ToDoubleSeconds(chaos_time - calm_time) / kKills);
}

}  // namespace
}  // namespace prolong
