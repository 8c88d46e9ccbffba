// deploy/slurm/prolong-stack.sbatch on a real one-node Slurm cluster (munged, slurmctld and
// slurmd as scheduler/launch/local_slurm.h starts them; skipped where they cannot run), with the
// real services and prolongctl, the way its header tells an operator to use it:
//   - the stack comes up as a batch job and writes stack.env, with addresses on the node's host
//     name, not loopback or a wildcard;
//   - a run with Slurm resources trains as a batch job of its own, one srun task per rank, whose
//     rank registers with the stack's scheduler at the address the script advertised, streams
//     from the stack's datamixer, and succeeds; the scheduler runs without the stack job's
//     SLURM_* variables (which would become the gang's srun options) but with SLURM_CONF;
//   - a run with local resources trains two ranks inside the stack's job and succeeds;
//   - scancel stops every service cleanly, and the stack submitted again on the same home still
//     knows both runs.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "scheduler/launch/local_slurm.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

constexpr char kScript[] = "deploy/slurm/prolong-stack.sbatch";

std::string Runfile(const std::string& path) {
  return std::filesystem::canonical(std::filesystem::absolute(path)).string();
}

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

std::string ReadOr(const std::string& path) { return ReadFile(path).value_or(""); }

class StackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string unavailable = scheduler::LocalSlurm::UnavailableReason();
    if (!unavailable.empty()) GTEST_SKIP() << unavailable;
    auto slurm = scheduler::LocalSlurm::Start();
    ASSERT_OK(slurm);
    slurm_ = *std::move(slurm);
    dir_ = testing::MakeTempDir();
    home_ = dir_ + "/home";
    std::filesystem::create_directories(home_);
    // PROLONG_BIN: one directory with every binary, as an installation has them.
    bin_ = dir_ + "/bin";
    std::filesystem::create_directories(bin_);
    for (const char* name : {"scheduler", "datamixer", "evaluator", "trainer", "prolongctl"}) {
      std::filesystem::create_symlink(Runfile(absl::StrCat("services/", name, "/", name)),
                                      absl::StrCat(bin_, "/", name));
    }
  }

  std::string Logs() const {
    std::string logs = slurm_ == nullptr ? "" : slurm_->Logs();
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_)) {
      const std::string path = entry.path().string();
      if (entry.is_regular_file() &&
          (absl::EndsWith(path, ".log") || absl::EndsWith(path, ".out") ||
           absl::EndsWith(path, "stack.env"))) {
        absl::StrAppend(&logs, "\n--- ", path, ":\n", ReadOr(path));
      }
    }
    return logs;
  }

  testing::RunResult Command(std::vector<std::string> argv,
                             absl::Duration timeout = absl::Seconds(60)) {
    argv.insert(argv.begin(), {"/usr/bin/env", "SLURM_CONF=" + slurm_->conf_path()});
    absl::StatusOr<testing::RunResult> result = testing::Run(argv, timeout);
    EXPECT_OK(result.status()) << absl::StrJoin(argv, " ");
    return result.ok() ? *result : testing::RunResult{};
  }

  testing::RunResult Ctl(const std::vector<std::string>& args,
                         absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {bin_ + "/prolongctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Command(argv, timeout);
  }

  // A corpus as an operator makes one: a SentencePiece tokenizer trained on text files, the
  // files ingested as domain "web" into the store the stack's datamixer serves.
  void MakeStore() {
    std::vector<std::string> files;
    std::filesystem::create_directories(dir_ + "/text");
    for (int d = 0; d < 120; ++d) {
      std::string text;
      for (int w = 0; w < 40; ++w) {
        absl::StrAppend(&text, "word", (d * 7 + w * 3) % 50, w % 9 == 8 ? ".\n" : " ");
      }
      files.push_back(Write(absl::StrCat(dir_, "/text/doc", d, ".txt"), text));
    }
    std::vector<std::string> train = {"tokenizer", "train", "--vocab-size=300",
                                      "--out=" + dir_ + "/tokenizer"};
    for (const std::string& file : files) train.push_back("--input=" + file);
    testing::RunResult result = Ctl(train, absl::Seconds(120));
    ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
    std::vector<std::string> ingest = {"data", "ingest", "--store=" + home_ + "/store",
                                       "--domain=web", "--tokenizer=" + dir_ + "/tokenizer.model"};
    ingest.insert(ingest.end(), files.begin(), files.end());
    result = Ctl(ingest, absl::Seconds(120));
    ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  }

  // sbatch of the script as its header says, on any free ports; the job id.
  std::string SubmitStack() {
    const testing::RunResult submitted = Command(
        {"/usr/bin/env", "PROLONG_HOME=" + home_, "PROLONG_BIN=" + bin_, "PROLONG_PORT_BASE=0",
         "sbatch", "--parsable", "--partition=" + slurm_->partition(), "--cpus-per-task=1",
         "--output=" + dir_ + "/stack-%j.out", kScript});
    EXPECT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
    return std::string(absl::StripAsciiWhitespace(submitted.stdout_text));
  }

  // stack.env once the stack job `job` has written it.
  std::map<std::string, std::string> WaitForStack(const std::string& job) {
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      std::map<std::string, std::string> env;
      for (absl::string_view line :
           absl::StrSplit(ReadOr(home_ + "/stack.env"), '\n', absl::SkipEmpty())) {
        std::pair<std::string, std::string> pair = absl::StrSplit(line, absl::MaxSplits('=', 1));
        env[pair.first] =
            std::string(absl::StripPrefix(absl::StripSuffix(pair.second, "\""), "\""));
      }
      if (env["PROLONG_STACK_JOB"] == job) return env;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "the stack job " << job << " wrote no stack.env" << Logs();
    return {};
  }

  bool JobEnded(const std::string& job, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      const testing::RunResult queued = Command({"squeue", "-h", "-j", job, "-o", "%i"});
      if (queued.exit_code == 0 && absl::StripAsciiWhitespace(queued.stdout_text).empty()) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  std::string RunSpec(const std::string& name, const std::string& resources) {
    return Write(dir_ + "/" + name + ".yaml",
                 absl::StrCat(R"(name: )", name, R"(
seed: 7
model:
  config: {vocab_size: 320, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
           num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256,
           bos_token_id: 1, eos_token_ids: [2]}
  precision: fp32
stages:
  - name: short
    seq_len: 64
    batch_tokens: 256
    total_tokens: 1024
    schedule: {peak_lr: 0.01, warmup_fraction: 0.25}
    mixture:
      - {domain: web, proportion: 1, packing: short}
resources: )",
                              resources, R"(
checkpoint: {directory: )",
                              home_, "/checkpoints/", name, R"(, every_steps: 2}
fault: {max_restarts: 0, heartbeat_timeout: 30s, rendezvous_timeout: 120s}
)"));
  }

  // Every service of a stack logged the end of its shutdown.
  void ExpectStopped(const std::string& logs) {
    for (const char* name : {"scheduler", "datamixer", "evaluator"}) {
      const std::string log = ReadOr(absl::StrCat(logs, "/", name, ".log"));
      EXPECT_TRUE(absl::StrContains(log, absl::StrCat(name, " stopped"))) << name << ":\n" << log;
    }
  }

  // `run get --json`'s field, as printed.
  std::string RunField(const std::string& scheduler, const std::string& run_id,
                       const std::string& field) {
    const testing::RunResult result =
        Ctl({"run", "--scheduler=" + scheduler, "get", run_id, "--json"});
    std::smatch match;
    const std::regex pattern("\"" + field + "\": \"?([^\",\n]*)\"?");
    if (!std::regex_search(result.stdout_text, match, pattern)) return "";
    return match[1].str();
  }

  // The process running `binary`, by its command line.
  pid_t FindProcess(const std::string& binary) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      pid_t pid = 0;
      if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
      const std::string cmdline = ReadOr(entry.path().string() + "/cmdline");
      if (cmdline.substr(0, cmdline.find('\0')) == binary) return pid;
    }
    return 0;
  }

  std::unique_ptr<scheduler::LocalSlurm> slurm_;
  std::string dir_;
  std::string home_;
  std::string bin_;
};

TEST_F(StackTest, RunsTrainThroughTheStackJobAndItRestartsOnItsHome) {
  ASSERT_NO_FATAL_FAILURE(MakeStore());
  const std::string stack_job = SubmitStack();
  ASSERT_FALSE(stack_job.empty());
  std::map<std::string, std::string> stack = WaitForStack(stack_job);
  ASSERT_FALSE(stack.empty());
  const std::string host = slurm_->node();
  const std::string scheduler = stack["PROLONG_SCHEDULER"];
  for (const char* name : {"PROLONG_SCHEDULER", "PROLONG_DATAMIXER", "PROLONG_EVALUATOR"}) {
    EXPECT_TRUE(std::regex_match(stack[name], std::regex(host + R"((\.\S*)?:[1-9]\d*)")))
        << name << "=" << stack[name];
  }
  for (absl::string_view address : absl::StrSplit(stack["PROLONG_METRICS"], ' ')) {
    EXPECT_TRUE(absl::StartsWith(address, host)) << stack["PROLONG_METRICS"];
  }
  for (const char* name : {"PROLONG_SCHEDULER", "PROLONG_DATAMIXER", "PROLONG_EVALUATOR"}) {
    const testing::RunResult health = Ctl({"health", stack[name], "--wait-seconds=30"});
    EXPECT_EQ(health.exit_code, 0) << name << ": " << health.stdout_text << health.stderr_text;
  }

  // The scheduler runs without the stack job's SLURM_* variables but with SLURM_CONF.
  const pid_t scheduler_pid = FindProcess(bin_ + "/scheduler");
  ASSERT_NE(scheduler_pid, 0) << Logs();
  std::vector<std::string> environment = absl::StrSplit(
      ReadOr(absl::StrCat("/proc/", scheduler_pid, "/environ")), '\0', absl::SkipEmpty());
  EXPECT_THAT(environment, ::testing::Contains("SLURM_CONF=" + slurm_->conf_path()));
  for (const std::string& variable : environment) {
    EXPECT_FALSE(absl::StartsWith(variable, "SLURM_") && !absl::StartsWith(variable, "SLURM_CONF="))
        << variable;
  }

  // A run placed by Slurm: a batch job of its own, its rank registering with the stack.
  const std::string slurm_run = [&] {
    const testing::RunResult submitted =
        Ctl({"run", "--scheduler=" + scheduler, "submit",
             RunSpec("on-slurm",
                     absl::StrCat("{data_parallel: 1, slurm: {partition: ", slurm_->partition(),
                                  ", nodes: 1, tasks_per_node: 1}}"))});
    EXPECT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
    return std::string(absl::StripAsciiWhitespace(submitted.stdout_text));
  }();
  ASSERT_FALSE(slurm_run.empty());
  testing::RunResult watched =
      Ctl({"run", "--scheduler=" + scheduler, "watch", slurm_run}, absl::Seconds(300));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << watched.stderr_text << Logs();
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "SUCCEEDED")) << watched.stdout_text;
  const std::string gang_job = RunField(scheduler, slurm_run, "launcher_job_id");
  EXPECT_FALSE(gang_job.empty());
  EXPECT_NE(gang_job, stack_job);
  const std::string attempt_dir = home_ + "/scheduler/runs/" + slurm_run + "/logs/attempt-1";
  const std::string gang_script = ReadOr(attempt_dir + "/gang.sbatch");
  EXPECT_TRUE(absl::StrContains(gang_script, "srun --ntasks=1")) << gang_script;
  EXPECT_TRUE(absl::StrContains(gang_script, "'--scheduler=" + scheduler + "'")) << gang_script;
  EXPECT_TRUE(absl::StrContains(gang_script, "'--datamixer=" + stack["PROLONG_DATAMIXER"] + "'"))
      << gang_script;
  EXPECT_TRUE(absl::StrContains(ReadOr(attempt_dir + "/rank-0.log"), "rank 0 of 1"))
      << ReadOr(attempt_dir + "/rank-0.log");
  EXPECT_EQ(absl::StripAsciiWhitespace(ReadOr(attempt_dir + "/slurm-" + gang_job + ".exit")), "0");
  const std::string scheduler_log = stack["PROLONG_STACK_LOGS"] + "/scheduler.log";
  EXPECT_TRUE(absl::StrContains(ReadOr(scheduler_log), "worker " + slurm_run + "/1/0 registered"))
      << ReadOr(scheduler_log);
  EXPECT_TRUE(std::filesystem::exists(home_ + "/checkpoints/on-slurm/short"));

  // A run with local resources: two ranks inside the stack's own job.
  const testing::RunResult local_submitted =
      Ctl({"run", "--scheduler=" + scheduler, "submit",
           RunSpec("in-stack", "{data_parallel: 2, local: {}}")});
  ASSERT_EQ(local_submitted.exit_code, 0) << local_submitted.stderr_text;
  const std::string local_run(absl::StripAsciiWhitespace(local_submitted.stdout_text));
  watched = Ctl({"run", "--scheduler=" + scheduler, "watch", local_run}, absl::Seconds(300));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << watched.stderr_text << Logs();
  for (int rank : {0, 1}) {
    EXPECT_TRUE(absl::StrContains(ReadOr(scheduler_log),
                                  absl::StrCat("worker ", local_run, "/1/", rank, " registered")))
        << ReadOr(scheduler_log);
  }

  // scancel: Slurm signals every process of the job; each service stops through its shutdown.
  ASSERT_EQ(Command({"scancel", stack_job}).exit_code, 0);
  ASSERT_TRUE(JobEnded(stack_job, absl::Seconds(60))) << Logs();
  ExpectStopped(stack["PROLONG_STACK_LOGS"]);

  // Submitted again on the same home, the stack knows both runs.
  const std::string second_job = SubmitStack();
  stack = WaitForStack(second_job);
  ASSERT_FALSE(stack.empty());
  for (const std::string& run : {slurm_run, local_run}) {
    EXPECT_EQ(RunField(stack["PROLONG_SCHEDULER"], run, "state"), "RUN_STATE_SUCCEEDED") << run;
  }
  // A signal to the batch shell alone (as sbatch --signal=B:TERM@... sends before the time
  // limit): the script passes it on, the services stop, and the job ends by itself.
  ASSERT_EQ(Command({"scancel", "--batch", "--signal=TERM", second_job}).exit_code, 0);
  ASSERT_TRUE(JobEnded(second_job, absl::Seconds(60))) << Logs();
  ExpectStopped(stack["PROLONG_STACK_LOGS"]);
  const testing::RunResult shown = Command({"scontrol", "show", "job", second_job});
  EXPECT_TRUE(absl::StrContains(shown.stdout_text, "JobState=COMPLETED")) << shown.stdout_text;
}

}  // namespace
}  // namespace prolong
