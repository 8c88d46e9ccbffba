// The scheduler as operators and workers meet it: a real scheduler process, a real datamixer
// and trainer workers it launches locally, driven through `prolongctl run`, with a tiny Llama
// (hidden 32, 2 layers, 4 heads, 2 kv heads, vocabulary 256) over two stages: 6 steps at 64
// tokens on dp = 2, then 4 steps at 128 tokens with the RoPE base raised on cp = 2.
//   - the two-stage run succeeds, and its final weights and AdamW state are the bytes of the
//     same two stages run with `prolongctl train --local`;
//   - a worker killed with SIGKILL is detected, the gang restarts from the stage's newest
//     checkpoint, and the run ends with the same bytes; a stopped (SIGSTOP) worker is found by
//     its missing heartbeats within the timeout;
//   - a scheduler killed with SIGKILL takes its gang with it; restarted on the same state, it
//     relaunches the run under a new attempt and the run ends with the same bytes;
//   - a user error (data that does not fill a stage) fails the run without a retry;
//   - a bad spec is refused with every problem named, paths outside the allowed roots too;
//   - a cancelled run stops its workers; submitting with the same request id twice makes one
//     run; list, get, logs and the scheduler's /metrics show the runs.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "scheduler/launch/local_slurm.h"
#include "tests/capped_streams.h"
#include "tests/run_control.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"
#include "trainer/checkpoint/checkpoint_store.h"

namespace prolong {
namespace {

using testing::Alive;
using testing::AllGone;
using testing::Ctl;
using testing::GetRun;
using testing::RunField;
using testing::ServiceProcess;
using testing::Submit;
using testing::Subprocess;
using testing::WaitFor;
using testing::WaitForCheckpoint;
using testing::WorkerPids;

constexpr int64_t kStage1Steps = 6;
constexpr int64_t kStage2Steps = 4;

// testing::kTinyModelYaml's model.
constexpr char kConfig[] = R"({"model_type": "llama", "vocab_size": 260, "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "max_position_embeddings": 2048, "bos_token_id": 1,
  "eos_token_id": 2})";

constexpr char kMixture[] = R"(
    mixture:
      - {domain: books, proportion: 0.5, packing: long}
      - {domain: web, proportion: 0.5, packing: short})";

std::string Stage1() {
  return absl::StrCat(R"(
  - name: short
    seq_len: 64
    batch_tokens: 256
    total_tokens: 1536
    schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1})",
                      kMixture);
}

std::string Stage2() {
  return absl::StrCat(R"(
  - name: long
    seq_len: 128
    batch_tokens: 256
    total_tokens: 1024
    rope_theta: 40000
    schedule: {peak_lr: 0.005, warmup_fraction: 0.25, shape: cosine, min_lr_ratio: 0.1})",
                      kMixture);
}

// The run: both stages, `extra` appended at the top level.
std::string Spec(const std::string& checkpoint_dir, const std::string& extra = "",
                 const std::string& name = "two-stage") {
  return absl::StrCat("name: ", name, R"(
seed: 3
deterministic: true
)",
                      testing::kTinyModelYaml, R"(stages:)", Stage1(), Stage2(), R"(
    layout: {data_parallel: 1, context_parallel: 2}
resources: {data_parallel: 2}
checkpoint: {directory: )",
                      checkpoint_dir, R"(, every_steps: 2}
fault: {max_restarts: 2, heartbeat_timeout: 5s, rendezvous_timeout: 60s}
)",
                      extra);
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::string Absolute(const std::string& path) { return std::filesystem::absolute(path).string(); }

std::string Bytes(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  EXPECT_OK(bytes) << path;
  return bytes.ok() ? *bytes : "";
}

std::string StepDir(const std::string& checkpoint_dir, int64_t step) {
  return checkpoint_dir + "/" + checkpoint::StepDirName(step);
}

// What every test shares: the corpus, one datamixer, and the final bytes of the two stages as
// `prolongctl train --local` trains them.
struct Fixture {
  std::string dir;
  ServiceProcess datamixer;
  std::string reference_dir;
  std::string reference_model;
  std::string reference_optimizer;
  std::string reference_sft_model;
};

Fixture& Shared() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    f->dir = testing::MakeTempDir();
    EXPECT_OK(testing::WriteLearnableCorpus(f->dir + "/store"));
    auto datamixer =
        testing::StartService({testing::kDatamixerBinary, "--store=" + f->dir + "/store",
                               "--address=127.0.0.1:0", "--metrics-address=off"});
    EXPECT_OK(datamixer);
    if (datamixer.ok()) f->datamixer = *std::move(datamixer);
    return f;
  }();
  return *fixture;
}

// The two stages with `prolongctl train --local`: the bytes a scheduled run must end with.
void TrainReference() {
  Fixture& f = Shared();
  if (!f.reference_model.empty()) return;
  const std::string dir = testing::MakeTempDir();
  const std::string config = WriteFile(dir, "config.json", kConfig);
  // The stage files as an operator would write them for `prolongctl train`.
  const std::string stage1 = WriteFile(
      dir, "stage1.yaml", absl::StrReplaceAll(Stage1(), {{"\n  - ", "\n"}, {"\n    ", "\n"}}));
  const std::string stage2 = WriteFile(
      dir, "stage2.yaml", absl::StrReplaceAll(Stage2(), {{"\n  - ", "\n"}, {"\n    ", "\n"}}));
  const std::vector<std::string> common = {"--datamixer=" + f.datamixer.address, "--seed=3",
                                           "--checkpoint-every=2", "--deterministic",
                                           "--precision=fp32"};
  std::vector<std::string> first = {testing::kProlongctlBinary,
                                    "train",
                                    "--local",
                                    "--nproc=2",
                                    "--stage=" + stage1,
                                    "--model-config=" + config,
                                    "--checkpoint-dir=" + dir + "/short"};
  first.insert(first.end(), common.begin(), common.end());
  auto result = testing::Run(first, absl::Seconds(300));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
  std::vector<std::string> second = {testing::kProlongctlBinary,
                                     "train",
                                     "--local",
                                     "--nproc=2",
                                     "--cp=2",
                                     "--stage=" + stage2,
                                     "--init-checkpoint=" + dir + "/short",
                                     "--checkpoint-dir=" + dir + "/long"};
  second.insert(second.end(), common.begin(), common.end());
  result = testing::Run(second, absl::Seconds(300));
  ASSERT_OK(result);
  ASSERT_EQ(result->exit_code, 0) << result->stderr_text;
  const std::string last = StepDir(dir + "/long", kStage1Steps + kStage2Steps);
  f.reference_dir = dir;
  f.reference_model = Bytes(last + "/model/model.safetensors");
  f.reference_optimizer = Bytes(last + "/optimizer.safetensors");
}

// An evaluator on CPU with its results under `dir`.
absl::StatusOr<ServiceProcess> StartEvaluator(const std::string& dir) {
  return testing::StartService({testing::kEvaluatorBinary, "--store=" + dir + "/results",
                                "--device=cpu", "--address=127.0.0.1:0", "--metrics-address=off"});
}

ServiceProcess StartScheduler(const std::string& state_dir,
                              const std::vector<std::string>& extra = {},
                              const std::string& address = "127.0.0.1:0") {
  std::vector<std::string> argv = {testing::kSchedulerBinary,
                                   "--state-dir=" + state_dir,
                                   "--address=" + address,
                                   "--metrics-address=127.0.0.1:0",
                                   "--trainer-binary=" + Absolute(testing::kTrainerBinary),
                                   "--datamixer=" + Shared().datamixer.address,
                                   "--heartbeat-interval-ms=200",
                                   "--restart-backoff-ms=200"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto scheduler = testing::StartService(argv);
  EXPECT_OK(scheduler);
  return scheduler.ok() ? *std::move(scheduler) : ServiceProcess();
}

void ExpectReferenceBytes(const std::string& checkpoint_dir) {
  TrainReference();
  const std::string last = StepDir(checkpoint_dir + "/long", kStage1Steps + kStage2Steps);
  EXPECT_TRUE(Bytes(last + "/model/model.safetensors") == Shared().reference_model)
      << "the final weights differ from prolongctl train --local's";
  EXPECT_TRUE(Bytes(last + "/optimizer.safetensors") == Shared().reference_optimizer)
      << "the final AdamW state differs from prolongctl train --local's";
}

// The short SFT the policy applies: 16 steps of 64 tokens on the web domain, sft-packed.
constexpr char kSftStage[] = R"({name: sft, seq_len: 64, batch_tokens: 256, total_tokens: 4096,
      schedule: {peak_lr: 0.005, warmup_fraction: 0.25, shape: cosine, min_lr_ratio: 0.1},
      mixture: [{domain: web, proportion: 1, packing: sft}]})";

// The two-stage run, each stage's last checkpoint evaluated raw and after the short SFT.
std::string AfterSftSpec(const std::string& checkpoint_dir, const std::string& tokenizer) {
  return absl::StrReplaceAll(
      Spec(checkpoint_dir,
           absl::StrCat(R"(evaluation:
  on_checkpoint: true
  raw_checkpoints: {stage_ends: true}
  spec:
    tasks: [{name: json_kv, input_lengths: [1024], num_examples: 2, chat_template: off}]
    max_new_tokens: 16
  after_sft:
    checkpoints: {stage_ends: true}
    stage: )",
                        kSftStage, "\n"),
           "sft-policy"),
      {{"  precision: fp32\n",
        absl::StrCat("  precision: fp32\n  tokenizer: {path: ", tokenizer, "}\n")}});
}

// The side job the scheduler submitted for `stage` at `step` of `run_id`, from its log.
std::string WaitForSideJob(const Subprocess& scheduler, const std::string& run_id,
                           const std::string& stage, int64_t step) {
  const std::regex pattern(
      absl::StrCat("run ", run_id, R"(: side job (\S+) fine-tunes )", stage, " step ", step, " "));
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    const std::string log = scheduler.Stderr();
    std::smatch match;
    if (std::regex_search(log, match, pattern)) return match[1].str();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return "";
}

// The newest checkpoint's weights in a stage directory.
std::string LastWeights(const std::string& stage_dir) {
  auto listed = checkpoint::ListCheckpoints(stage_dir);
  EXPECT_OK(listed);
  if (!listed.ok() || listed->empty()) return "";
  return Bytes(listed->back().path + "/model/model.safetensors");
}

// The short SFT with `prolongctl train --local` from stage 1's last checkpoint by hand: the
// weights a side job of that checkpoint must end with.
const std::string& SftReference() {
  Fixture& f = Shared();
  TrainReference();
  if (!f.reference_sft_model.empty()) return f.reference_sft_model;
  const std::string stage = WriteFile(f.reference_dir, "sft.yaml", kSftStage);
  auto trained = testing::Run(
      {testing::kProlongctlBinary, "train", "--local", "--nproc=2", "--stage=" + stage,
       "--init-checkpoint=" + StepDir(f.reference_dir + "/short", kStage1Steps),
       "--checkpoint-dir=" + f.reference_dir + "/sft", "--datamixer=" + f.datamixer.address,
       "--seed=3", "--checkpoint-every=2", "--deterministic", "--precision=fp32"},
      absl::Seconds(300));
  EXPECT_OK(trained);
  if (trained.ok()) {
    EXPECT_EQ(trained->exit_code, 0) << trained->stderr_text;
  }
  f.reference_sft_model = LastWeights(f.reference_dir + "/sft");
  EXPECT_FALSE(f.reference_sft_model.empty());
  return f.reference_sft_model;
}

TEST(SchedulerTest, ATwoStageRunEqualsTheStagesTrainedByHand) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  const std::string spec = WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints"));
  const std::string run_id = Submit(scheduler, spec, {"--request-id=first"});
  ASSERT_TRUE(absl::StartsWith(run_id, "two-stage-")) << run_id;
  // The same request again is the same run.
  EXPECT_EQ(Submit(scheduler, spec, {"--request-id=first"}), run_id);

  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << watched.stderr_text
                                  << scheduler.process->Stderr();
  // Every stage's steps and checkpoints appear as they happen, and the run says it is done.
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "short step 6 loss")) << watched.stdout_text;
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "long step 4 loss")) << watched.stdout_text;
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "checkpoint long step 4: "))
      << watched.stdout_text;
  EXPECT_TRUE(
      absl::StrContains(watched.stdout_text, "stage 2/2 (long), attempt 2: 2 ranks (dp 1 x cp 2)"))
      << watched.stdout_text;
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "SUCCEEDED: all 2 stages trained"))
      << watched.stdout_text;
  ExpectReferenceBytes(dir + "/checkpoints");

  // list, get and logs.
  const testing::RunResult listed = Ctl(scheduler, {"list"});
  EXPECT_TRUE(std::regex_search(
      listed.stdout_text, std::regex(run_id + R"( +SUCCEEDED +\S+ +stage 2/2 \(long\) step 4/4)")))
      << listed.stdout_text;
  EXPECT_EQ(RunField(scheduler, run_id, "restarts"), "");  // zero: not printed
  const testing::RunResult logs = Ctl(scheduler, {"logs", run_id, "--rank=1"});
  EXPECT_EQ(logs.exit_code, 0) << logs.stderr_text;
  EXPECT_TRUE(absl::StrContains(logs.stdout_text, "trainer rank 1 of 2")) << logs.stdout_text;
  const testing::RunResult first_attempt_logs =
      Ctl(scheduler, {"logs", run_id, "--rank=0", "--attempt=1"});
  EXPECT_TRUE(absl::StrContains(first_attempt_logs.stdout_text, "step 6/6 loss"))
      << first_attempt_logs.stdout_text;
  EXPECT_EQ(Ctl(scheduler, {"logs", run_id, "--rank=5"}).exit_code, 1);

  // The scheduler's /metrics.
  auto metrics = HttpGet(scheduler.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  EXPECT_TRUE(absl::StrContains(*metrics, "prolong_scheduler_runs{state=\"SUCCEEDED\"} 1"))
      << *metrics;
  EXPECT_TRUE(absl::StrContains(*metrics, "prolong_scheduler_run_step{run=\"" + run_id + "\"} 4"))
      << *metrics;
}

TEST(SchedulerTest, EveryCheckpointIsEvaluatedAndTheRunShowsTheScores) {
  const std::string dir = testing::MakeTempDir();
  std::ofstream(dir + "/tiny.tiktoken", std::ios::binary)
      << tokenizer::ByteRankFile({"ab", "e ", "th"});
  auto evaluator = StartEvaluator(dir);
  ASSERT_OK(evaluator);
  ServiceProcess scheduler =
      StartScheduler(dir + "/scheduler", {"--evaluator=" + evaluator->address});
  // One stage, checkpoints at steps 3 and 6, each scored on JSON KV recall at 1K tokens. The
  // Llama 3 preset's special tokens need Llama 3's vocabulary.
  const std::string spec = absl::StrCat(R"(name: scored
seed: 3
model:
  config: {vocab_size: 128256, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
           num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048}
  tokenizer: {path: )",
                                        dir, R"(/tiny.tiktoken, preset: llama3}
stages:)",
                                        Stage1(), R"(
checkpoint: {directory: )",
                                        dir, R"(/checkpoints, every_steps: 3}
evaluation:
  on_checkpoint: true
  spec:
    tasks: [{name: json_kv, input_lengths: [1024], num_examples: 2}]
    max_new_tokens: 16
)");
  const std::string run_id = Submit(scheduler, WriteFile(dir, "run.yaml", spec));
  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << scheduler.process->Stderr();
  for (int step : {3, 6}) {
    EXPECT_TRUE(std::regex_search(
        watched.stdout_text,
        std::regex(absl::StrCat(R"(evaluation short step )", step, R"(: recall \d+\.\d)"))))
        << watched.stdout_text;
  }
  // The run succeeds once both are scored.
  EXPECT_TRUE(absl::EndsWith(watched.stdout_text.substr(0, watched.stdout_text.find("\nrun: ")),
                             "SUCCEEDED: all 1 stage trained and their checkpoints evaluated"))
      << watched.stdout_text;
  const testing::RunResult got = Ctl(scheduler, {"get", run_id});
  EXPECT_TRUE(absl::StrContains(got.stdout_text, "evaluation short step 6: recall "))
      << got.stdout_text;
  auto metrics = HttpGet(scheduler.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  EXPECT_TRUE(std::regex_search(
      *metrics, std::regex(absl::StrCat(
                    R"(prolong_scheduler_evaluation_score\{category="recall",protocol="raw",run=")",
                    run_id, R"(",stage="short"\} \d)"))))
      << *metrics;
}

TEST(SchedulerTest, AKilledWorkerRestartsTheGangFromTheNewestCheckpoint) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  const std::string run_id =
      Submit(scheduler, WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints")));
  ASSERT_TRUE(WaitForCheckpoint(dir + "/checkpoints/short", 2, absl::Seconds(300)));
  const std::vector<pid_t> pids = WorkerPids(*scheduler.process, 1);
  ASSERT_EQ(pids.size(), 2u) << scheduler.process->Stderr();
  ASSERT_EQ(kill(pids[1], SIGKILL), 0);

  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << scheduler.process->Stderr();
  EXPECT_TRUE(
      absl::StrContains(watched.stdout_text, "worker lost: rank 1 was killed by signal 9 (Killed)"))
      << watched.stdout_text;
  EXPECT_TRUE(absl::StrContains(watched.stdout_text,
                                "RESTARTING: rank 1 was killed by signal 9 "
                                "(Killed); restart 1 of 2 from the newest "
                                "checkpoint"))
      << watched.stdout_text;
  EXPECT_EQ(RunField(scheduler, run_id, "restarts"), "1");
  EXPECT_FALSE(Alive(pids[0])) << "the lost worker's gang mate still runs";
  ExpectReferenceBytes(dir + "/checkpoints");
}

TEST(SchedulerTest, AStoppedWorkerIsFoundByItsMissingHeartbeats) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  const std::string run_id =
      Submit(scheduler,
             WriteFile(dir, "run.yaml",
                       absl::StrReplaceAll(Spec(dir + "/checkpoints"),
                                           {{"heartbeat_timeout: 5s", "heartbeat_timeout: 2s"}})));
  ASSERT_TRUE(WaitForCheckpoint(dir + "/checkpoints/short", 2, absl::Seconds(300)));
  const std::vector<pid_t> pids = WorkerPids(*scheduler.process, 1);
  ASSERT_EQ(pids.size(), 2u);
  ASSERT_EQ(kill(pids[0], SIGSTOP), 0);
  const absl::Time stopped = absl::Now();
  // The loss as the scheduler recorded it, from its event stream.
  auto stub = v1::Scheduler::NewStub(
      grpc::CreateChannel(scheduler.address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchRunRequest request;
  request.set_run_id(run_id);
  auto reader = stub->WatchRun(&context, request);
  v1::RunEvent event;
  while (reader->Read(&event) && !event.has_worker_lost()) {
  }
  ASSERT_TRUE(event.has_worker_lost());
  context.TryCancel();
  EXPECT_TRUE(std::regex_match(event.worker_lost().reason(),
                               std::regex(R"(rank 0: no heartbeat for \S+ \(timeout 2s\))")))
      << event.worker_lost().reason();
  // Within the timeout and a second, counted from the last heartbeat before the stop at worst.
  const absl::Time lost =
      absl::FromUnixSeconds(event.time().seconds()) + absl::Nanoseconds(event.time().nanos());
  EXPECT_LT(lost - stopped, absl::Seconds(2) + absl::Seconds(1));
  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(600));
  EXPECT_EQ(watched.exit_code, 0) << watched.stdout_text;
  EXPECT_EQ(RunField(scheduler, run_id, "restarts"), "1");
  EXPECT_FALSE(Alive(pids[0]));
}

TEST(SchedulerTest, ARestartedSchedulerRelaunchesItsRunsAndNeverRunsTwoGangs) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  const std::string run_id =
      Submit(scheduler, WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints")));
  ASSERT_TRUE(WaitForCheckpoint(dir + "/checkpoints/short", 2, absl::Seconds(300)));
  const std::vector<pid_t> pids = WorkerPids(*scheduler.process, 1);
  ASSERT_EQ(pids.size(), 2u);
  scheduler.process->Signal(SIGKILL);
  ASSERT_OK(scheduler.process->Wait(absl::Seconds(10)).status());
  // The gang goes with its scheduler: no worker of attempt 1 outlives it.
  EXPECT_TRUE(AllGone(pids));

  ServiceProcess restarted = StartScheduler(dir + "/scheduler");
  const testing::RunResult watched = Ctl(restarted, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << restarted.process->Stderr();
  EXPECT_TRUE(absl::StrContains(watched.stdout_text,
                                "RESTARTING: the scheduler restarted during attempt 1"))
      << watched.stdout_text;
  EXPECT_EQ(RunField(restarted, run_id, "restarts"), "");  // not a fault of the run
  ExpectReferenceBytes(dir + "/checkpoints");
}

// The same run through a real one-node Slurm (sbatch, one srun task per rank); the scheduler is
// killed while the job runs and, restarted, reattaches to the job instead of launching another.
TEST(SchedulerTest, ARunThroughSlurmEqualsTheLocalOneAndOutlivesItsScheduler) {
  const std::string unavailable = scheduler::LocalSlurm::UnavailableReason();
  if (!unavailable.empty()) GTEST_SKIP() << unavailable;
  auto slurm = scheduler::LocalSlurm::Start();
  ASSERT_OK(slurm);
  const std::string dir = testing::MakeTempDir();
  const std::vector<std::string> flags = {"--slurm-conf=" + (*slurm)->conf_path()};
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler", flags);
  const std::string spec = absl::StrReplaceAll(
      Spec(dir + "/checkpoints"),
      {{"resources: {data_parallel: 2}",
        absl::StrCat("resources: {data_parallel: 2, slurm: {partition: ", (*slurm)->partition(),
                     ", nodes: 1, tasks_per_node: 2}}")}});
  const std::string run_id = Submit(scheduler, WriteFile(dir, "run.yaml", spec));
  ASSERT_TRUE(WaitForCheckpoint(dir + "/checkpoints/short", 2, absl::Seconds(300)))
      << scheduler.process->Stderr() << (*slurm)->Logs();
  // The scheduler dies while a gang trains: its ranks held still as soon as they register (they
  // register before their first step), its Slurm job recorded on the run, and its stage's last
  // checkpoint still to write. Stage 1 may be over by now; then it is stage 2's gang.
  int64_t attempt = 0;
  std::vector<pid_t> pids;
  std::set<int64_t> tried;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (attempt == 0) {
    ASSERT_LT(absl::Now(), deadline) << scheduler.process->Stderr() << (*slurm)->Logs();
    for (int64_t candidate : {int64_t{1}, int64_t{2}}) {
      if (tried.count(candidate) > 0) continue;
      pids = WorkerPids(*scheduler.process, candidate);
      if (pids.size() < 2) continue;
      tried.insert(candidate);
      for (pid_t pid : pids) kill(pid, SIGSTOP);
      const std::string stage = candidate == 1 ? "short" : "long";
      const int64_t last = candidate == 1 ? kStage1Steps : kStage1Steps + kStage2Steps;
      if (RunField(scheduler, run_id, "attempt") == absl::StrCat(candidate) &&
          !RunField(scheduler, run_id, "launcher_job_id").empty() &&
          !std::filesystem::exists(StepDir(dir + "/checkpoints/" + stage, last))) {
        attempt = candidate;
        break;
      }
      for (pid_t pid : pids) kill(pid, SIGCONT);
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  scheduler.process->Signal(SIGKILL);
  ASSERT_OK(scheduler.process->Wait(absl::Seconds(10)).status());
  for (pid_t pid : pids) ASSERT_EQ(kill(pid, SIGCONT), 0);
  // The gang trains its stage to the end: its last checkpoint is written with no scheduler to
  // hear of it, and rank 0 gives up reporting it (3 tries a second apart).
  const std::string stage = attempt == 1 ? "short" : "long";
  const int64_t last_step = attempt == 1 ? kStage1Steps : kStage1Steps + kStage2Steps;
  ASSERT_TRUE(WaitForCheckpoint(dir + "/checkpoints/" + stage, last_step, absl::Seconds(300)))
      << (*slurm)->Logs();
  absl::SleepFor(absl::Seconds(5));

  // At the address the workers know.
  ServiceProcess restarted = StartScheduler(dir + "/scheduler", flags, scheduler.address);
  const testing::RunResult watched = Ctl(restarted, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << restarted.process->Stderr()
                                  << (*slurm)->Logs();
  EXPECT_TRUE(std::regex_search(restarted.process->Stderr(),
                                std::regex(R"(reattached to attempt [12], Slurm job \d+)")))
      << restarted.process->Stderr();
  EXPECT_FALSE(absl::StrContains(watched.stdout_text, "RESTARTING")) << watched.stdout_text;
  EXPECT_EQ(RunField(restarted, run_id, "attempt"), "2");  // stage 2's gang, nothing more
  // The unreported checkpoint was found in the stage's directory and recorded, and every
  // checkpoint is on the run once.
  EXPECT_TRUE(absl::StrContains(restarted.process->Stderr(),
                                absl::StrCat(StepDir(dir + "/checkpoints/" + stage, last_step),
                                             " was not reported; recorded")))
      << restarted.process->Stderr();
  for (int64_t step = 2; step <= kStage1Steps + kStage2Steps; step += 2) {
    // A checkpoint's step is its stage's.
    const std::string line = step <= kStage1Steps
                                 ? absl::StrCat("checkpoint short step ", step, ": ")
                                 : absl::StrCat("checkpoint long step ", step - kStage1Steps, ": ");
    const size_t first = watched.stdout_text.find(line);
    EXPECT_NE(first, std::string::npos) << line << "\n" << watched.stdout_text;
    EXPECT_EQ(watched.stdout_text.find(line, first + 1), std::string::npos) << line << "\n"
                                                                            << watched.stdout_text;
  }
  ExpectReferenceBytes(dir + "/checkpoints");
}

// Watch streams beyond --max-watches and requests over the scheduler's 4 MB are refused with
// RESOURCE_EXHAUSTED, and a slot freed serves the next watcher. The run waits all along: its
// datamixer is not there.
TEST(SchedulerTest, WatchesBeyondTheLimitAndOversizedRequestsAreRefused) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler", {"--max-watches=1"});
  const std::string run_id = Submit(
      scheduler, WriteFile(dir, "run.yaml",
                           Spec(dir + "/checkpoints", "data: {datamixer_address: 127.0.0.1:1}\n")));
  auto stub = v1::Scheduler::NewStub(
      grpc::CreateChannel(scheduler.address, grpc::InsecureChannelCredentials()));
  v1::WatchRunRequest watch;
  watch.set_run_id(run_id);
  auto held_context = std::make_unique<grpc::ClientContext>();
  auto held = stub->WatchRun(held_context.get(), watch);
  v1::RunEvent event;
  ASSERT_TRUE(held->Read(&event));
  const grpc::Status refused = testing::StatusWithoutMessages<v1::RunEvent>(
      [&](grpc::ClientContext& context) { return stub->WatchRun(&context, watch); });
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "already 1 WatchRun and StreamLogs streams (--max-watches) open, the most this "
            "server holds; retry later");
  v1::StreamLogsRequest logs;
  logs.set_run_id(run_id);
  EXPECT_EQ(testing::StatusWithoutMessages<v1::LogLines>([&](grpc::ClientContext& context) {
              return stub->StreamLogs(&context, logs);
            }).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  held_context->TryCancel();
  held->Finish();
  // The server frees the slot when it sees the cancel (within its 1 s poll); a client retries.
  EXPECT_TRUE(testing::FirstMessageWithin<v1::RunEvent>(
      absl::Seconds(10),
      [&](grpc::ClientContext& context) { return stub->WatchRun(&context, watch); }))
      << "the freed slot serves the next watcher";
  {
    grpc::ClientContext context;
    v1::SubmitRunRequest huge;
    huge.mutable_spec()->set_name(std::string(5 << 20, 'a'));
    v1::Run run;
    const grpc::Status status = stub->SubmitRun(&context, huge, &run);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  }
  EXPECT_EQ(RunField(scheduler, run_id, "state"), "RUN_STATE_PENDING");
  EXPECT_EQ(Ctl(scheduler, {"cancel", run_id}).exit_code, 0);
}

TEST(SchedulerTest, AUserErrorFailsTheRunWithoutARetry) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  // More web tokens than the corpus has, without repetition: the datamixer refuses the plan.
  const std::string spec = absl::StrReplaceAll(Spec(dir + "/checkpoints"),
                                               {{"total_tokens: 1536", "total_tokens: 15360000"}});
  const std::string run_id = Submit(scheduler, WriteFile(dir, "run.yaml", spec));
  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(120));
  EXPECT_EQ(watched.exit_code, 1);
  EXPECT_TRUE(std::regex_search(
      watched.stdout_text,
      std::regex(
          R"(FAILED: stage 1/2 \(short\): the datamixer refused the plan: stages\[0\]: datamixer \S+: .*)")))
      << watched.stdout_text;
  EXPECT_EQ(RunField(scheduler, run_id, "restarts"), "");
}

TEST(SchedulerTest, BadSpecsAreRefusedWithEveryProblem) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler =
      StartScheduler(dir + "/scheduler", {"--allowed-root=" + dir + "/allowed"});
  std::string spec =
      absl::StrReplaceAll(Spec(dir + "/allowed/checkpoints"),
                          {{"seq_len: 64", "seq_len: 0"},
                           {"proportion: 0.5, packing: long", "proportion: 0.7, packing: long"}});
  testing::RunResult result = Ctl(scheduler, {"submit", WriteFile(dir, "bad.yaml", spec)});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "problems:\n")) << result.stderr_text;
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "  stages[0].seq_len: ")) << result.stderr_text;
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "  stages[0].mixture: ")) << result.stderr_text;
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "  stages[1].mixture: ")) << result.stderr_text;

  for (const std::string& outside : {dir + "/elsewhere", dir + "/allowed/../elsewhere"}) {
    result = Ctl(scheduler, {"submit", WriteFile(dir, "outside.yaml", Spec(outside))});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_TRUE(absl::StrContains(result.stderr_text, "checkpoint.directory: "))
        << result.stderr_text;
  }
  // Nothing was stored.
  EXPECT_EQ(Ctl(scheduler, {"list"}).stdout_text.find("two-stage"), std::string::npos);

  // A spec file that does not parse names its line.
  result = Ctl(scheduler, {"submit", WriteFile(dir, "typo.yaml", "name: x\nstagez: []\n")});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "typo.yaml:2: stagez: no such field"))
      << result.stderr_text;
  // The scheduler unreachable.
  ServiceProcess nowhere;
  nowhere.address = "127.0.0.1:1";
  EXPECT_EQ(Ctl(nowhere, {"list"}).exit_code, 2);
}

TEST(SchedulerTest, ADryRunPrintsThePlansAndTheTime) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  const testing::RunResult result =
      Ctl(scheduler, {"submit", WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints")), "--dry-run",
                      "--tokens-per-second-per-gpu=128"});
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_TRUE(
      absl::StrContains(result.stdout_text,
                        "stage 1/2 short: 6 steps of 4 sequences x 64 tokens = 1536 tokens; "
                        "2 ranks (dp 2 x cp 1)"))
      << result.stdout_text;
  EXPECT_TRUE(
      absl::StrContains(result.stdout_text,
                        "stage 2/2 long: 4 steps of 2 sequences x 128 tokens = 1024 tokens; "
                        "2 ranks (dp 1 x cp 2)"))
      << result.stdout_text;
  // 1536 / (128 x 2) + 1024 / (128 x 2) seconds.
  EXPECT_TRUE(absl::StrContains(result.stdout_text, "estimated total: 10s")) << result.stdout_text;
  EXPECT_TRUE(
      std::regex_search(result.stdout_text, std::regex(R"(\n  books +768 tokens +50\.00%)")))
      << result.stdout_text;
  EXPECT_EQ(Ctl(scheduler, {"list"}).stdout_text.find("two-stage"), std::string::npos);
}

TEST(SchedulerTest, EachStagesLastCheckpointIsScoredRawAndAfterASideJobsSft) {
  const std::string dir = testing::MakeTempDir();
  const std::string tokenizer = testing::WriteByteTokenizer(dir);
  auto evaluator = StartEvaluator(dir);
  ASSERT_OK(evaluator);
  ServiceProcess scheduler =
      StartScheduler(dir + "/scheduler", {"--evaluator=" + evaluator->address});
  const std::string checkpoints = dir + "/checkpoints";
  const std::string run_id =
      Submit(scheduler, WriteFile(dir, "run.yaml", AfterSftSpec(checkpoints, tokenizer)));

  // Stage 1's side job waits for the run's gang to train both stages, then runs on its
  // resources; one of its workers is killed as soon as it has written its first checkpoint.
  const std::string side_job = WaitForSideJob(*scheduler.process, run_id, "short", 6);
  ASSERT_FALSE(side_job.empty()) << scheduler.process->Stderr();
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (WorkerPids(*scheduler.process, 1, side_job).size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::vector<pid_t> pids = WorkerPids(*scheduler.process, 1, side_job);
  ASSERT_EQ(pids.size(), 2u) << scheduler.process->Stderr();
  EXPECT_TRUE(GetRun(scheduler, run_id).trained()) << "the side job did not wait for the run";
  const std::string sft_dir = checkpoints + "/after-sft/short-step-6/sft";
  // Its steps take milliseconds.
  ASSERT_TRUE(
      WaitForCheckpoint(sft_dir, kStage1Steps + 2, absl::Seconds(60), absl::Milliseconds(1)));
  ASSERT_EQ(kill(pids[1], SIGKILL), 0);

  // The run ends once both side jobs have, with two scores of each stage's last checkpoint.
  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << scheduler.process->Stderr();
  const v1::Run run = GetRun(scheduler, run_id);
  EXPECT_EQ(run.state(), v1::RUN_STATE_SUCCEEDED) << run.message();
  EXPECT_EQ(run.restarts(), 0);
  std::map<std::pair<std::string, v1::EvaluationProtocol>, v1::EvaluationSummary> scored;
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    EXPECT_EQ(evaluation.failure(), "") << evaluation.ShortDebugString();
    EXPECT_TRUE(evaluation.category_scores().contains("recall")) << evaluation.ShortDebugString();
    scored[{absl::StrCat(evaluation.stage(), "@", evaluation.step()), evaluation.protocol()}] =
        evaluation;
  }
  EXPECT_EQ(run.evaluations_size(), 4);
  for (const std::string checkpoint : {"short@6", "long@4"}) {
    EXPECT_TRUE(scored.count({checkpoint, v1::EVALUATION_PROTOCOL_RAW})) << checkpoint;
    EXPECT_TRUE(scored.count({checkpoint, v1::EVALUATION_PROTOCOL_AFTER_SFT})) << checkpoint;
  }
  const v1::EvaluationSummary& short_after_sft =
      scored[{"short@6", v1::EVALUATION_PROTOCOL_AFTER_SFT}];
  EXPECT_EQ(short_after_sft.side_job_run_id(), side_job);
  EXPECT_TRUE(std::regex_search(watched.stdout_text,
                                std::regex(R"(evaluation long step 4 after SFT: recall \d)")))
      << watched.stdout_text;
  // Both protocols' scores in /metrics, once it is refreshed (every second).
  for (const std::string protocol : {"raw", "after_sft"}) {
    const std::regex series(
        absl::StrCat(R"(prolong_scheduler_evaluation_score\{category="recall",protocol=")",
                     protocol, R"(",run=")", run_id, R"(",stage="long"\} \d)"));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    absl::StatusOr<std::string> metrics;
    do {
      metrics = HttpGet(scheduler.metrics_address, "/metrics");
      ASSERT_OK(metrics);
    } while (!std::regex_search(*metrics, series) && absl::Now() < deadline);
    EXPECT_TRUE(std::regex_search(*metrics, series)) << *metrics;
  }

  // The killed side job restarted from its checkpoint; the run's own weights are those of the
  // same run without the policy.
  const v1::Run side = GetRun(scheduler, side_job);
  EXPECT_EQ(side.state(), v1::RUN_STATE_SUCCEEDED) << side.message();
  EXPECT_EQ(side.restarts(), 1);
  EXPECT_EQ(side.side_job_of().run_id(), run_id);
  ExpectReferenceBytes(checkpoints);

  // `run get` puts both scores side by side; `eval compare` reads either through the scheduler.
  const testing::RunResult got = Ctl(scheduler, {"get", run_id});
  EXPECT_TRUE(absl::StrContains(got.stdout_text, "recall (raw)  recall (after SFT)"))
      << got.stdout_text;
  auto compared = testing::Run({testing::kProlongctlBinary, "eval", "compare", run_id + ":long:4",
                                run_id + ":long:4:after-sft", "--scheduler=" + scheduler.address,
                                "--evaluator=" + evaluator->address},
                               absl::Seconds(60));
  ASSERT_OK(compared);
  EXPECT_EQ(compared->exit_code, 0) << compared->stderr_text;
  EXPECT_TRUE(absl::StrContains(compared->stdout_text, "long step 4 after SFT, evaluation "))
      << compared->stdout_text;

  // The SFT'd weights are those of `prolongctl train --local` with the same stage from the same
  // checkpoint.
  EXPECT_TRUE(LastWeights(sft_dir) == SftReference())
      << "the side job's weights differ from prolongctl train --local's";
}

TEST(SchedulerTest, ARestartedSchedulerResumesItsSideJobs) {
  const std::string dir = testing::MakeTempDir();
  const std::string tokenizer = testing::WriteByteTokenizer(dir);
  auto evaluator = StartEvaluator(dir);
  ASSERT_OK(evaluator);
  const std::vector<std::string> flags = {"--evaluator=" + evaluator->address};
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler", flags);
  const std::string checkpoints = dir + "/checkpoints";
  const std::string run_id =
      Submit(scheduler, WriteFile(dir, "run.yaml", AfterSftSpec(checkpoints, tokenizer)));
  // The scheduler is killed once stage 1's side job has written its first checkpoint; its
  // workers die with it.
  const std::string side_job = WaitForSideJob(*scheduler.process, run_id, "short", 6);
  ASSERT_FALSE(side_job.empty()) << scheduler.process->Stderr();
  const std::string sft_dir = checkpoints + "/after-sft/short-step-6/sft";
  ASSERT_TRUE(
      WaitForCheckpoint(sft_dir, kStage1Steps + 2, absl::Seconds(120), absl::Milliseconds(1)));
  scheduler.process->Signal(SIGKILL);
  ASSERT_OK(scheduler.process->Wait(absl::Seconds(10)).status());

  ServiceProcess restarted = StartScheduler(dir + "/scheduler", flags);
  const testing::RunResult watched = Ctl(restarted, {"watch", run_id}, absl::Seconds(600));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << restarted.process->Stderr();
  const v1::Run run = GetRun(restarted, run_id);
  EXPECT_EQ(run.state(), v1::RUN_STATE_SUCCEEDED) << run.message();
  int after_sft = 0;
  for (const v1::EvaluationSummary& evaluation : run.evaluations()) {
    EXPECT_EQ(evaluation.failure(), "") << evaluation.ShortDebugString();
    after_sft += evaluation.protocol() == v1::EVALUATION_PROTOCOL_AFTER_SFT;
  }
  EXPECT_EQ(after_sft, 2);
  // One side job per checkpoint, also across the restart.
  const std::vector<std::string> listed =
      absl::StrSplit(Ctl(restarted, {"list"}).stdout_text, "side job of");
  EXPECT_EQ(listed.size(), 3u);
  const v1::Run side = GetRun(restarted, side_job);
  EXPECT_EQ(side.state(), v1::RUN_STATE_SUCCEEDED) << side.message();
  EXPECT_EQ(side.restarts(), 0);  // not a fault of the side job
  EXPECT_TRUE(LastWeights(sft_dir) == SftReference())
      << "the resumed side job's weights differ from prolongctl train --local's";
  ExpectReferenceBytes(checkpoints);
}

TEST(SchedulerTest, SideJobsAreCancelledWithTheirRun) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  // A dry run plans the side jobs' stage too: the store has no chat domain.
  const testing::RunResult dry = Ctl(
      scheduler, {"submit",
                  WriteFile(dir, "chat.yaml",
                            absl::StrReplaceAll(AfterSftSpec(dir + "/checkpoints", "/tokenizer"),
                                                {{"{domain: web, proportion: 1, packing: sft}",
                                                  "{domain: chat, proportion: 1, packing: sft}"}})),
                  "--dry-run"});
  EXPECT_EQ(dry.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(dry.stderr_text, "evaluation.after_sft.stage: datamixer "))
      << dry.stderr_text;
  const std::string run_id = Submit(
      scheduler, WriteFile(dir, "run.yaml",
                           AfterSftSpec(dir + "/checkpoints", testing::WriteByteTokenizer(dir))));
  // Stage 1's side job is submitted with its last checkpoint and queued behind the run.
  const std::string side_job = WaitForSideJob(*scheduler.process, run_id, "short", 6);
  ASSERT_FALSE(side_job.empty()) << scheduler.process->Stderr();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  v1::Run queued = GetRun(scheduler, side_job);
  while (!absl::StartsWith(queued.message(), "waiting: ") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    queued = GetRun(scheduler, side_job);
  }
  EXPECT_EQ(queued.state(), v1::RUN_STATE_PENDING);
  EXPECT_TRUE(absl::StartsWith(queued.message(), "waiting: queued behind run " + run_id + ": "))
      << queued.message();
  EXPECT_EQ(Ctl(scheduler, {"cancel", run_id}).exit_code, 0);
  const v1::Run side = GetRun(scheduler, side_job);
  EXPECT_EQ(side.state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(side.message(), "cancelled with run " + run_id);
}

TEST(SchedulerTest, ACancelledRunStopsItsWorkers) {
  const std::string dir = testing::MakeTempDir();
  ServiceProcess scheduler = StartScheduler(dir + "/scheduler");
  const std::string run_id =
      Submit(scheduler, WriteFile(dir, "run.yaml", Spec(dir + "/checkpoints")));
  ASSERT_TRUE(WaitFor(scheduler, run_id, "state", "RUN_STATE_RUNNING", absl::Seconds(60)));
  // Both workers registered.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (WorkerPids(*scheduler.process, 1).size() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const std::vector<pid_t> pids = WorkerPids(*scheduler.process, 1);
  ASSERT_EQ(pids.size(), 2u);
  const testing::RunResult cancelled = Ctl(scheduler, {"cancel", run_id, "--reason=not needed"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.stderr_text;
  EXPECT_EQ(cancelled.stdout_text, run_id + ": CANCELLED: cancelled: not needed\n");
  EXPECT_TRUE(AllGone(pids));
  EXPECT_EQ(Ctl(scheduler, {"watch", run_id}).exit_code, 1);
  // Cancelling again changes nothing; an unknown run is named.
  EXPECT_EQ(Ctl(scheduler, {"cancel", run_id}).exit_code, 0);
  const testing::RunResult unknown = Ctl(scheduler, {"get", "no-such-run"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.stderr_text, "prolongctl run: run_id: no run no-such-run\n");
}

}  // namespace
}  // namespace prolong
