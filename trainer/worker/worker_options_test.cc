#include "trainer/worker/worker_options.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "common/cli.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "trainer/attention/fused_kernel.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/parallel/parallel_plan.h"

namespace prolong::worker {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kStage[] = R"(name: s1
seq_len: 64
batch_tokens: 256
total_tokens: 2048
schedule: {peak_lr: 0.001, warmup_fraction: 0.1, shape: linear, min_lr_ratio: 0.1}
mixture:
  - {domain: books, proportion: 1.0, packing: long}
)";

constexpr char kConfig[] = R"({"model_type": "llama", "vocab_size": 64, "hidden_size": 32,
  "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 4,
  "num_key_value_heads": 2})";

std::string Write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

absl::StatusOr<WorkerOptions> Parse(std::vector<std::string> args) {
  CLI::App app;
  WorkerOptions options;
  AddJobFlags(app, options);
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order.
  try {
    app.parse(args);
  } catch (const CLI::ParseError& error) {
    return absl::InvalidArgumentError(error.what());
  }
  return options;
}

TEST(WorkerOptionsTest, JobFlagArgsParseBackToTheSameJob) {
  WorkerOptions job;
  job.datamixer_address = "10.0.0.1:7410";
  job.datamixer_timeout_seconds = 12.5;
  job.rendezvous_timeout_seconds = 30;
  job.collective_timeout_seconds = 90.25;
  job.stage_path = "/data/stage 1.yaml";
  job.seed = 18446744073709551615ull;
  job.model_config_path = "/m/config.json";
  job.checkpoint_dir = "/ckpt";
  job.checkpoint_every = 7;
  job.keep_last = 3;
  job.micro_batch_sequences = 2;
  job.deterministic = true;
  job.trainer.parallel.activation_checkpointing = parallel::ActivationCheckpointing::kFull;
  job.device = "cpu";
  job.trainer.parallel.precision = parallel::Precision::kBf16;
  job.trainer.parallel.cp_scheme = parallel::CpScheme::kRing;
  job.trainer.parallel.gpu_attention = attention::FusedKernel::kPerDocumentCudnn;
  job.read_ahead_batches = 5;
  job.trainer.grad_clip_norm = 0.5;
  job.trainer.adamw.weight_decay = 0.01;
  job.trainer.parallel.shard_optimizer_state = true;
  job.trainer.parallel.overlap_grad_reduce = false;
  job.peak_tflops = 989.5;
  job.run_name = "r1";
  job.inject_nonfinite_at_step = 4;
  absl::StatusOr<WorkerOptions> parsed = Parse(JobFlagArgs(job));
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->datamixer_address, job.datamixer_address);
  EXPECT_EQ(parsed->datamixer_timeout_seconds, job.datamixer_timeout_seconds);
  EXPECT_EQ(parsed->rendezvous_timeout_seconds, job.rendezvous_timeout_seconds);
  EXPECT_EQ(parsed->collective_timeout_seconds, job.collective_timeout_seconds);
  EXPECT_EQ(parsed->stage_path, job.stage_path);
  EXPECT_EQ(parsed->seed, job.seed);
  EXPECT_EQ(parsed->model_config_path, job.model_config_path);
  EXPECT_EQ(parsed->init_checkpoint, "");
  EXPECT_EQ(parsed->checkpoint_dir, job.checkpoint_dir);
  EXPECT_EQ(parsed->checkpoint_every, job.checkpoint_every);
  EXPECT_EQ(parsed->keep_last, job.keep_last);
  EXPECT_EQ(parsed->micro_batch_sequences, job.micro_batch_sequences);
  EXPECT_TRUE(parsed->deterministic);
  const parallel::ParallelPlan& plan = parsed->trainer.parallel;
  EXPECT_EQ(plan.activation_checkpointing, parallel::ActivationCheckpointing::kFull);
  EXPECT_EQ(parsed->device, "cpu");
  EXPECT_EQ(plan.precision, parallel::Precision::kBf16);
  EXPECT_EQ(plan.cp_scheme, parallel::CpScheme::kRing);
  EXPECT_EQ(plan.gpu_attention, attention::FusedKernel::kPerDocumentCudnn);
  EXPECT_EQ(parsed->read_ahead_batches, 5);
  EXPECT_EQ(parsed->trainer.grad_clip_norm, 0.5);
  EXPECT_EQ(parsed->trainer.adamw.weight_decay, 0.01);
  EXPECT_TRUE(plan.shard_optimizer_state);
  EXPECT_FALSE(plan.overlap_grad_reduce);
  EXPECT_EQ(parsed->peak_tflops, 989.5);
  EXPECT_EQ(parsed->run_name, "r1");
  EXPECT_EQ(parsed->inject_nonfinite_at_step, 4);
}

TEST(WorkerOptionsTest, OptimizerStateShardingIsOffUnlessAsked) {
  absl::StatusOr<WorkerOptions> plain = Parse({"--stage=s.yaml", "--checkpoint-dir=/c"});
  ASSERT_OK(plain);
  EXPECT_FALSE(plain->trainer.parallel.shard_optimizer_state);
  WorkerOptions job = *plain;
  for (const std::string& arg : JobFlagArgs(job)) {
    EXPECT_NE(arg, "--shard-optimizer-state");
  }
  absl::StatusOr<WorkerOptions> sharded =
      Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--shard-optimizer-state"});
  ASSERT_OK(sharded);
  EXPECT_TRUE(sharded->trainer.parallel.shard_optimizer_state);
  EXPECT_FALSE(
      Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--shard-optimizer-state=maybe"}).ok());
}

TEST(WorkerOptionsTest, ActivationCheckpointingChoices) {
  for (const auto& [choice, short_on, long_on] :
       std::vector<std::tuple<std::string, bool, bool>>{{"auto", false, true},
                                                        {"on", true, true},
                                                        {"off", false, false},
                                                        {"selective", true, true}}) {
    absl::StatusOr<WorkerOptions> parsed =
        Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--activation-checkpointing=" + choice});
    ASSERT_OK(parsed) << choice;
    auto checkpoints = [&](int64_t seq_len) {
      return parallel::ResolveAuto(parsed->trainer.parallel, seq_len, /*gpu=*/false)
                 .activation_checkpointing != parallel::ActivationCheckpointing::kOff;
    };
    EXPECT_EQ(checkpoints(8192), short_on) << choice;
    EXPECT_EQ(checkpoints(65536), long_on) << choice;
  }
  EXPECT_FALSE(
      Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--activation-checkpointing=some"}).ok());
}

TEST(WorkerOptionsTest, GradientReductionOverlapsUnlessTurnedOff) {
  absl::StatusOr<WorkerOptions> plain = Parse({"--stage=s.yaml", "--checkpoint-dir=/c"});
  ASSERT_OK(plain);
  EXPECT_TRUE(plain->trainer.parallel.overlap_grad_reduce);
  for (const std::string& arg : JobFlagArgs(*plain)) {
    EXPECT_NE(arg, "--overlap-grad-reduce=false");
  }
  absl::StatusOr<WorkerOptions> after =
      Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--overlap-grad-reduce=false"});
  ASSERT_OK(after);
  EXPECT_FALSE(after->trainer.parallel.overlap_grad_reduce);
}

TEST(WorkerOptionsTest, CheckJobReadsTheStageAndTheConfig) {
  const std::string dir = testing::MakeTempDir();
  WorkerOptions job;
  job.stage_path = Write(dir, "stage.yaml", kStage);
  job.model_config_path = Write(dir, "config.json", kConfig);
  job.checkpoint_dir = dir + "/ckpt";
  absl::StatusOr<JobFiles> files = CheckJob(job);
  ASSERT_OK(files);
  EXPECT_EQ(files->stage.name(), "s1");
  EXPECT_EQ(files->model_config.hidden_size, 32);
  absl::StatusOr<train::LrSchedule> schedule = StageSchedule(files->stage, 8);
  ASSERT_OK(schedule);
  EXPECT_EQ(schedule->shape, train::ScheduleShape::kLinear);
  EXPECT_EQ(schedule->steps, 8);
  EXPECT_DOUBLE_EQ(schedule->peak_lr, 0.001);
}

TEST(WorkerOptionsTest, CheckJobNamesTheFlagAndTheProblem) {
  const std::string dir = testing::MakeTempDir();
  WorkerOptions job;
  job.stage_path = dir + "/missing.yaml";
  job.model_config_path = Write(dir, "config.json", kConfig);
  job.checkpoint_dir = dir + "/ckpt";
  absl::Status status = CheckJob(job).status();
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kNotFound, StartsWith("--stage: " + job.stage_path)));

  job.stage_path = Write(dir, "no_lr.yaml", "name: s\nseq_len: 64\n");
  status = CheckJob(job).status();
  EXPECT_TRUE(absl::StrContains(status.message(), "schedule.peak_lr")) << status;

  job.stage_path = Write(dir, "stage.yaml", kStage);
  job.init_checkpoint = dir + "/no-model";
  status = CheckJob(job).status();
  EXPECT_TRUE(absl::StrContains(status.message(), "exactly one of --model-config")) << status;

  job.model_config_path = "";
  status = CheckJob(job).status();
  EXPECT_TRUE(absl::StartsWith(status.message(), "--init-checkpoint: ")) << status;

  // A directory that holds none of the three kinds of start.
  job.init_checkpoint = dir + "/empty";
  std::filesystem::create_directories(job.init_checkpoint);
  status = CheckJob(job).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound,
                               HasSubstr("neither a Hugging Face model directory")));
}

// Writes DIR/step-N as a training checkpoint would be laid out (the files' contents do not
// matter to CheckJob beyond config.json).
std::string WriteTrainingCheckpoint(const std::string& dir, int64_t step) {
  auto writer = checkpoint::CheckpointWriter::Begin(dir, step);
  EXPECT_OK(writer);
  const std::string staging = (*writer)->staging_dir();
  std::filesystem::create_directories(staging + "/model");
  Write(staging + "/model", "config.json", kConfig);
  Write(staging, checkpoint::kOptimizerFile, "optimizer");
  Write(staging, checkpoint::kTrainerStateFile, "{}");
  auto path = (*writer)->Commit();
  EXPECT_OK(path);
  return *path;
}

TEST(WorkerOptionsTest, InitCheckpointTakesAModelATrainingCheckpointOrTheNewestOfADirectory) {
  const std::string dir = testing::MakeTempDir();
  WorkerOptions job;
  job.stage_path = Write(dir, "stage.yaml", kStage);
  job.checkpoint_dir = dir + "/ckpt";

  // A Hugging Face model directory: weights only.
  std::filesystem::create_directories(dir + "/hf");
  Write(dir + "/hf", "config.json", kConfig);
  job.init_checkpoint = dir + "/hf";
  absl::StatusOr<JobFiles> files = CheckJob(job);
  ASSERT_OK(files);
  EXPECT_EQ(files->init_model_dir, dir + "/hf");
  EXPECT_EQ(files->init_training_checkpoint, "");
  EXPECT_EQ(files->model_config.hidden_size, 32);

  // An earlier stage's checkpoints: one named directly, or the newest complete one.
  const std::string stage1 = dir + "/stage1";
  const std::string step4 = WriteTrainingCheckpoint(stage1, 4);
  const std::string step8 = WriteTrainingCheckpoint(stage1, 8);
  job.init_checkpoint = step4;
  files = CheckJob(job);
  ASSERT_OK(files);
  EXPECT_EQ(files->init_training_checkpoint, step4);
  EXPECT_EQ(files->init_model_dir, step4 + "/model");

  job.init_checkpoint = stage1;
  files = CheckJob(job);
  ASSERT_OK(files);
  EXPECT_EQ(files->init_training_checkpoint, step8);

  // A truncated newest checkpoint is passed over for the one before it.
  std::filesystem::resize_file(step8 + "/" + checkpoint::kOptimizerFile, 2);
  files = CheckJob(job);
  ASSERT_OK(files);
  EXPECT_EQ(files->init_training_checkpoint, step4);

  // Named directly, a damaged checkpoint is an error naming it.
  job.init_checkpoint = step8;
  const absl::Status status = CheckJob(job).status();
  EXPECT_TRUE(absl::StartsWith(status.message(), "--init-checkpoint: " + step8)) << status;
}

TEST(WorkerOptionsTest, TheCpSchemeIsAllGatherOrRing) {
  absl::StatusOr<WorkerOptions> parsed = Parse({"--stage=s.yaml", "--checkpoint-dir=/c"});
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->trainer.parallel.cp_scheme, parallel::CpScheme::kAllGather);
  parsed = Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--cp-scheme=ring"});
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->trainer.parallel.cp_scheme, parallel::CpScheme::kRing);

  parsed = Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--cp-scheme=allgather"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--cp-scheme")) << parsed.status();
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), "all-gather")) << parsed.status();
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), "ring")) << parsed.status();
}

TEST(WorkerOptionsTest, TheGpuAttentionIsOneOfTheFusedKernels) {
  absl::StatusOr<WorkerOptions> parsed = Parse({"--stage=s.yaml", "--checkpoint-dir=/c"});
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->trainer.parallel.gpu_attention, attention::kDefaultFusedKernel);
  parsed = Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--gpu-attention=varlen-flash"});
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->trainer.parallel.gpu_attention, attention::FusedKernel::kVarlenFlash);

  parsed = Parse({"--stage=s.yaml", "--checkpoint-dir=/c", "--gpu-attention=flash3"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--gpu-attention")) << parsed.status();
  EXPECT_TRUE(absl::StrContains(parsed.status().message(), "per-document-cudnn"))
      << parsed.status();
}

// The enums cannot hold a name that is not one; the trainer's numbers set in code are checked.
TEST(WorkerOptionsTest, TrainerOptionsSetInCodeAreChecked) {
  const std::string dir = testing::MakeTempDir();
  WorkerOptions job;
  job.stage_path = Write(dir, "stage.yaml", kStage);
  job.model_config_path = Write(dir, "config.json", kConfig);
  job.checkpoint_dir = dir + "/ckpt";
  EXPECT_OK(CheckJob(job));
  job.trainer.grad_clip_norm = -1;
  EXPECT_THAT(CheckJob(job), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("grad_clip_norm must be finite and >= 0")));
  job.trainer.grad_clip_norm = 1;
  job.trainer.adamw.weight_decay = std::nan("");
  EXPECT_THAT(CheckJob(job),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("adamw.weight_decay")));
}

TEST(WorkerOptionsTest, UlyssesNeedsTheHeadsToSplitAmongTheCpRanks) {
  const std::string dir = testing::MakeTempDir();
  WorkerOptions job;
  job.stage_path = Write(dir, "stage.yaml", kStage);
  job.model_config_path = Write(dir, "config.json", kConfig);  // 4 heads, 2 kv heads
  job.checkpoint_dir = dir + "/ckpt";
  job.trainer.parallel.cp_scheme = parallel::CpScheme::kUlysses;
  job.cp_size = 4;  // two ranks per kv head
  EXPECT_OK(CheckJob(job));
  job.cp_size = 3;
  EXPECT_THAT(CheckJob(job), StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("4 heads do not divide among 3 ranks")));
  job.trainer.parallel.cp_scheme = parallel::CpScheme::kRing;
  EXPECT_OK(CheckJob(job));
}

// Every job flag is forwarded: a launcher that dropped one would start ranks with its default.
TEST(WorkerOptionsTest, JobFlagArgsNameEveryJobFlag) {
  CLI::App app;
  WorkerOptions job;
  job.model_config_path = "/m/config.json";
  job.init_checkpoint = "/m";
  job.deterministic = true;
  job.trainer.parallel.shard_optimizer_state = true;
  job.trainer.parallel.shard_weights = true;
  job.trainer.parallel.overlap_grad_reduce = false;
  job.trainer.skip_nonfinite = true;
  job.run_name = "r";
  job.client_tls.tls_ca = "/tls/ca.pem";
  job.client_tls.tls_cert = "/tls/worker.pem";
  job.client_tls.tls_key = "/tls/worker.key";
  job.inject_nonfinite_at_step = 1;
  AddJobFlags(app, job);
  const std::vector<std::string> args = JobFlagArgs(job);
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_lnames().empty() || option->get_lnames().front() == "help") continue;
    const std::string flag = "--" + option->get_lnames().front();
    EXPECT_TRUE(std::any_of(
        args.begin(), args.end(),
        [&](const std::string& arg) { return arg == flag || absl::StartsWith(arg, flag + "="); }))
        << "\"" << flag << "\" is not in JobFlagArgs";
  }
}

TEST(WorkerOptionsTest, CheckRankWantsDpTimesCpToBeTheWorld) {
  WorkerOptions rank;
  rank.world_size = 4;
  rank.dp_size = 2;
  rank.cp_size = 1;
  rank.rendezvous_address = "127.0.0.1:1";
  EXPECT_TRUE(absl::StrContains(CheckRank(rank).message(), "must equal --world (4)"));
  rank.cp_size = 2;
  EXPECT_OK(CheckRank(rank));
  rank.rank = 4;
  EXPECT_TRUE(absl::StrContains(CheckRank(rank).message(), "--rank: 4 is not in [0, 4)"));
  rank.rank = 1;
  rank.host_rendezvous = true;
  EXPECT_TRUE(absl::StrContains(CheckRank(rank).message(), "only rank 0 hosts"));
  rank.rank = 0;
  EXPECT_OK(CheckRank(rank));
  rank.host_rendezvous = false;
  rank.rendezvous_address = "";
  EXPECT_TRUE(absl::StrContains(CheckRank(rank).message(), "--rendezvous"));
}

}  // namespace
}  // namespace prolong::worker
