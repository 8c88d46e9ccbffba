#include "scheduler/launch/slurm_launcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/launch/local_slurm.h"
#include "tests/subprocess.h"

namespace prolong::scheduler {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

void WriteExecutable(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  chmod(path.c_str(), 0755);
}

// A stand-in trainer: prints its rank and arguments, writes its pid to DIR/pid-RANK, then runs
// the shell command given for its rank.
std::string WriteWorker(const std::string& dir, const std::vector<std::string>& rank_commands) {
  std::string script = absl::StrCat(
      "#!/bin/sh\n"
      "echo \"SLURM_PROCID=$SLURM_PROCID\"\n"
      "for arg in \"$@\"; do echo \"ARG=$arg\"; done\n"
      "echo $$ >\"",
      dir, "/pid-$SLURM_PROCID\"\n", "case \"$SLURM_PROCID\" in\n");
  for (size_t rank = 0; rank < rank_commands.size(); ++rank) {
    absl::StrAppend(&script, "  ", rank, ") ", rank_commands[rank], " ;;\n");
  }
  absl::StrAppend(&script, "esac\n");
  const std::string path = absl::StrCat(dir, "/worker.sh");
  WriteExecutable(path, script);
  return path;
}

GangSpec TwoRankGang(const std::string& dir, const std::string& worker) {
  GangSpec gang;
  gang.run_id = "run1";
  gang.attempt = 3;
  gang.stage = "short";
  gang.dp_size = 2;
  gang.cp_size = 1;
  gang.scheduler_address = "127.0.0.1:1234";
  gang.trainer_binary = worker;
  gang.job_args = {"--data=/a b/it's", "--steps=3"};
  gang.log_dir = absl::StrCat(dir, "/logs");
  return gang;
}

GangStatus WaitForEnd(Gang& gang, absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + timeout;
  GangStatus status = gang.Poll();
  while (status.state == GangState::kRunning && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    status = gang.Poll();
  }
  return status;
}

// Alive and not a zombie.
bool ProcessAlive(int64_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  const size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] != 'Z';
}

int64_t WaitForPid(const std::string& path) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    int64_t pid = 0;
    absl::StatusOr<std::string> text = ReadFile(path);
    if (text.ok() && absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) && pid > 0) {
      return pid;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return 0;
}

int64_t JobId(const Gang& gang) {
  const auto* slurm_gang = dynamic_cast<const SlurmGang*>(&gang);
  return slurm_gang == nullptr ? 0 : slurm_gang->job_id();
}

// ---------------------------------------------------------------------------------------------
// Without Slurm: checks before submission, the sbatch command line, and Poll over fake clients.

TEST(SlurmLauncherSpecTest, RefusesSpecsThatCannotBePlaced) {
  const std::string dir = testing::MakeTempDir();
  const GangSpec gang = TwoRankGang(dir, "/bin/true");
  v1::SlurmLauncher negative;
  negative.set_nodes(-1);
  EXPECT_THAT(SlurmLauncher(negative).Launch(gang),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("slurm.nodes")));
  v1::SlurmLauncher mismatch;
  mismatch.set_nodes(2);
  mismatch.set_tasks_per_node(2);
  EXPECT_THAT(SlurmLauncher(mismatch).Launch(gang),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("slurm.nodes x slurm.tasks_per_node is 2 x 2")));
  GangSpec no_logs = gang;
  no_logs.log_dir.clear();
  EXPECT_THAT(SlurmLauncher(v1::SlurmLauncher()).Launch(no_logs),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("log_dir")));
}

TEST(SlurmLauncherSpecTest, NamesAMissingSbatch) {
  const std::string dir = testing::MakeTempDir();
  SlurmLauncherOptions options;
  options.sbatch = absl::StrCat(dir, "/no/sbatch");
  EXPECT_THAT(SlurmLauncher(v1::SlurmLauncher(), options).Launch(TwoRankGang(dir, "/bin/true")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no/sbatch")));
}

TEST(SlurmLauncherSpecTest, SubmitsTheSpecsResources) {
  const std::string dir = testing::MakeTempDir();
  // A stand-in sbatch that records its arguments and environment.
  SlurmLauncherOptions options;
  options.sbatch = absl::StrCat(dir, "/sbatch");
  options.env = {{"SLURM_CONF", "/etc/test/slurm.conf"}};
  WriteExecutable(options.sbatch, absl::StrCat("#!/bin/sh\n"
                                               "for arg in \"$@\"; do echo \"$arg\"; done >",
                                               dir,
                                               "/args\n"
                                               "echo \"$SLURM_CONF\" >",
                                               dir, "/conf\necho '42;cluster'\n"));
  v1::SlurmLauncher config;
  config.set_partition("gpu");
  config.set_account("lm");
  config.set_nodes(1);
  config.set_tasks_per_node(2);
  config.set_gpus_per_node(8);
  config.mutable_time_limit()->set_seconds(90 * 60 + 1);
  config.add_extra_args("--qos=high");
  const GangSpec gang = TwoRankGang(dir, "/bin/true");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gang> launched, SlurmLauncher(config, options).Launch(gang));
  EXPECT_EQ(launched->Describe(), "Slurm job 42");
  EXPECT_EQ(JobId(*launched), 42);

  ASSERT_OK_AND_ASSIGN(std::string args, ReadFile(absl::StrCat(dir, "/args")));
  const std::string script = absl::StrCat(gang.log_dir, "/gang.sbatch");
  EXPECT_EQ(args, absl::StrCat("--parsable\n--no-requeue\n--job-name=prolong-run1-a3\n--output=",
                               gang.log_dir,
                               "/slurm-%j.log\n--ntasks=2\n--nodes=1\n--ntasks-per-node=2\n"
                               "--gpus-per-node=8\n--partition=gpu\n--account=lm\n"
                               "--time=0-01:30:01\n--qos=high\n",
                               script, "\n"));
  ASSERT_OK_AND_ASSIGN(std::string conf, ReadFile(absl::StrCat(dir, "/conf")));
  EXPECT_EQ(conf, "/etc/test/slurm.conf\n");
  ASSERT_OK_AND_ASSIGN(std::string batch, ReadFile(script));
  EXPECT_THAT(batch, HasSubstr("--kill-on-bad-exit=1"));
  EXPECT_THAT(batch, HasSubstr(absl::StrCat("--output='", gang.log_dir, "'/rank-%t.log")));
  EXPECT_THAT(batch, HasSubstr("'--data=/a b/it'\\''s'"));
  EXPECT_THAT(batch, Not(HasSubstr("--rank")));
  EXPECT_FALSE(std::ifstream(script + ".tmp").good());
}

TEST(SlurmLauncherSpecTest, ReportsSbatchsWords) {
  const std::string dir = testing::MakeTempDir();
  SlurmLauncherOptions options;
  options.sbatch = absl::StrCat(dir, "/sbatch");
  WriteExecutable(options.sbatch,
                  "#!/bin/sh\necho 'sbatch: error: invalid partition specified: foo' >&2\n"
                  "echo 'sbatch: error: Batch job submission failed: Invalid partition' >&2\n"
                  "exit 1\n");
  EXPECT_THAT(SlurmLauncher(v1::SlurmLauncher(), options).Launch(TwoRankGang(dir, "/bin/true")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("sbatch: exit 1: sbatch: error: invalid partition specified: foo; "
                                 "sbatch: error: Batch job submission failed")));
}

// Poll over a stand-in scontrol that prints `shown` (or fails as Slurm does for a forgotten
// job) and a stand-in sacct that fails as without accounting storage.
class FakeSlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    options_.scontrol = absl::StrCat(dir_, "/scontrol");
    options_.sacct = absl::StrCat(dir_, "/sacct");
    options_.scancel = "/bin/true";
    WriteExecutable(options_.sacct,
                    "#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n");
  }
  void Shows(const std::string& state, const std::string& exit_code) {
    WriteExecutable(options_.scontrol,
                    absl::StrCat("#!/bin/sh\ncat <<'EOF'\nJobId=7 JobName=prolong-x JobState=X\n"
                                 "   JobState=",
                                 state, " Reason=None Dependency=(null)\n   Requeue=0 ExitCode=",
                                 exit_code, "\n   RunTime=00:00:01\nEOF\n"));
  }
  void Forgot() {
    WriteExecutable(options_.scontrol,
                    "#!/bin/sh\necho 'slurm_load_jobs error: Invalid job id specified' >&2\n"
                    "exit 1\n");
  }
  GangStatus Poll() {
    return SlurmLauncher(v1::SlurmLauncher(), options_).Reattach(7, dir_)->Poll();
  }

  std::string dir_;
  SlurmLauncherOptions options_;
};

TEST_F(FakeSlurmTest, ReadsScontrol) {
  Shows("RUNNING", "0:0");
  EXPECT_EQ(Poll().state, GangState::kRunning);
  Shows("COMPLETING", "0:0");
  EXPECT_EQ(Poll().state, GangState::kRunning);
  Shows("COMPLETED", "0:0");
  EXPECT_EQ(Poll().state, GangState::kSucceeded);

  Shows("FAILED", "0:9");
  GangStatus status = Poll();
  EXPECT_EQ(status.state, GangState::kFailed);
  EXPECT_THAT(status.reason, HasSubstr("Slurm job 7's script was killed by signal 9"));
  EXPECT_TRUE(status.retryable);

  Shows("TIMEOUT", "0:0");
  status = Poll();
  EXPECT_THAT(status.reason, HasSubstr("reached its time limit"));
  EXPECT_TRUE(status.retryable);

  ASSERT_OK(WriteFileAtomically(absl::StrCat(dir_, "/slurm-7.failed"), "3 2\n"));
  Shows("FAILED", "2:0");
  status = Poll();
  EXPECT_EQ(status.reason, "rank 3 exited with code 2 (Slurm job 7)");
  EXPECT_FALSE(status.retryable);
}

TEST_F(FakeSlurmTest, AsksSlurmAtMostOncePerQueryInterval) {
  // The stand-in scontrol, behind one that counts its calls.
  Shows("RUNNING", "0:0");
  const std::string shows = options_.scontrol;
  options_.scontrol = absl::StrCat(dir_, "/counting-scontrol");
  const std::string calls = absl::StrCat(dir_, "/calls");
  WriteExecutable(options_.scontrol,
                  absl::StrCat("#!/bin/sh\necho x >> '", calls, "'\nexec '", shows, "' \"$@\"\n"));
  options_.query_interval = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<Gang>> gang =
      SlurmLauncher(v1::SlurmLauncher(), options_).Reattach(7, dir_);
  ASSERT_OK(gang);
  const absl::Time start = absl::Now();
  int polls = 0;
  while (absl::Now() - start < absl::Milliseconds(1200)) {
    EXPECT_EQ((*gang)->Poll().state, GangState::kRunning);
    ++polls;
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::string asked = ReadFile(calls).value_or("");
  const int64_t questions = std::count(asked.begin(), asked.end(), '\n');
  EXPECT_GE(polls, 30);
  EXPECT_GE(questions, 2);  // at the first poll and 500 ms later, at least
  EXPECT_LE(questions, 3);

  // Its end is seen at the next question.
  Shows("COMPLETED", "0:0");  // in place of the counting one, where the gang looks
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ((*gang)->Poll().state, GangState::kSucceeded);
}

TEST_F(FakeSlurmTest, TakesAnUnreachableControllerAsRunning) {
  WriteExecutable(options_.scontrol,
                  "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' "
                  ">&2\nexit 1\n");
  EXPECT_EQ(Poll().state, GangState::kRunning);
}

TEST_F(FakeSlurmTest, FallsBackToTheScriptsRecordOnceSlurmForgets) {
  Forgot();
  GangStatus status = Poll();
  EXPECT_EQ(status.state, GangState::kFailed);
  EXPECT_THAT(status.reason, HasSubstr("no longer known to Slurm"));
  EXPECT_TRUE(status.retryable);

  ASSERT_OK(WriteFileAtomically(absl::StrCat(dir_, "/slurm-7.exit"), "0\n"));
  EXPECT_EQ(Poll().state, GangState::kSucceeded);

  ASSERT_OK(WriteFileAtomically(absl::StrCat(dir_, "/slurm-7.exit"), "137\n"));
  ASSERT_OK(WriteFileAtomically(absl::StrCat(dir_, "/slurm-7.failed"), "1 137\n"));
  status = Poll();
  EXPECT_EQ(status.reason, "rank 1 was killed by signal 9 (Slurm job 7)");
  EXPECT_TRUE(status.retryable);
}

TEST_F(FakeSlurmTest, RemembersTheFinalStatus) {
  Shows("COMPLETED", "0:0");
  std::unique_ptr<SlurmGang> gang = SlurmLauncher(v1::SlurmLauncher(), options_).Reattach(7, dir_);
  EXPECT_EQ(gang->Poll().state, GangState::kSucceeded);
  Forgot();
  EXPECT_EQ(gang->Poll().state, GangState::kSucceeded);
}

// ---------------------------------------------------------------------------------------------
// Against a real one-node Slurm cluster.

class SlurmLauncherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!LocalSlurm::UnavailableReason().empty()) return;
    absl::StatusOr<std::unique_ptr<LocalSlurm>> started = LocalSlurm::Start();
    if (started.ok()) {
      slurm_ = started->release();
    } else {
      start_error_ = new absl::Status(started.status());
    }
  }
  static void TearDownTestSuite() {
    delete slurm_;
    slurm_ = nullptr;
  }

  void SetUp() override {
    if (const std::string reason = LocalSlurm::UnavailableReason(); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
    ASSERT_NE(slurm_, nullptr) << *start_error_;
    dir_ = testing::MakeTempDir();
  }

  SlurmLauncher MakeLauncher(const std::string& partition = "") const {
    v1::SlurmLauncher config;
    config.set_partition(partition.empty() ? slurm_->partition() : partition);
    SlurmLauncherOptions options;
    options.env = slurm_->env();
    return SlurmLauncher(config, options);
  }

  // The job's queue entry as squeue lists it (empty once it has left).
  std::string Queued(int64_t job_id) const {
    absl::StatusOr<testing::RunResult> listed =
        testing::Run({"/usr/bin/env", "SLURM_CONF=" + slurm_->conf_path(), "squeue", "-h", "-j",
                      absl::StrCat(job_id)},
                     absl::Seconds(30));
    return listed.ok() ? std::string(absl::StripAsciiWhitespace(listed->stdout_text)) : "?";
  }

  std::string dir_;
  static LocalSlurm* slurm_;
  static absl::Status* start_error_;
};

LocalSlurm* SlurmLauncherTest::slurm_ = nullptr;
absl::Status* SlurmLauncherTest::start_error_ = nullptr;

TEST_F(SlurmLauncherTest, RunsEveryRankWithTheWorkerArgs) {
  const GangSpec gang = TwoRankGang(dir_, WriteWorker(dir_, {"exit 0", "exit 0"}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gang> launched, MakeLauncher().Launch(gang));
  const int64_t job_id = JobId(*launched);
  EXPECT_EQ(launched->Describe(), absl::StrCat("Slurm job ", job_id));

  const GangStatus status = WaitForEnd(*launched);
  EXPECT_EQ(status.state, GangState::kSucceeded) << status.reason << slurm_->Logs();
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_OK_AND_ASSIGN(std::string log, ReadFile(RankLogPath(gang.log_dir, rank)));
    EXPECT_THAT(log, HasSubstr(absl::StrCat("SLURM_PROCID=", rank, "\n")));
    for (const char* arg : {"--world=2", "--dp=2", "--cp=1", "--scheduler=127.0.0.1:1234",
                            "--run-id=run1", "--attempt=3", "--data=/a b/it's", "--steps=3"}) {
      EXPECT_THAT(log, HasSubstr(absl::StrCat("ARG=", arg, "\n"))) << "rank " << rank;
    }
    EXPECT_THAT(log, Not(HasSubstr("--rank")));
  }

  // A scheduler that restarted finds the gang again by its job id.
  std::unique_ptr<SlurmGang> reattached = MakeLauncher().Reattach(job_id, gang.log_dir);
  EXPECT_EQ(reattached->Describe(), launched->Describe());
  EXPECT_EQ(reattached->Poll().state, GangState::kSucceeded);
}

TEST_F(SlurmLauncherTest, AUserErrorInOneRankFailsTheGangForGood) {
  // Rank 0 would run for minutes: the failure of rank 1 must end it.
  const GangSpec gang = TwoRankGang(dir_, WriteWorker(dir_, {"exec sleep 300", "sleep 1; exit 2"}));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gang> launched, MakeLauncher().Launch(gang));
  const GangStatus status = WaitForEnd(*launched);
  EXPECT_EQ(status.state, GangState::kFailed);
  EXPECT_EQ(status.reason, absl::StrCat("rank 1 exited with code 2 (", launched->Describe(), ")"));
  EXPECT_FALSE(status.retryable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  const int64_t rank0 = WaitForPid(absl::StrCat(dir_, "/pid-0"));
  ASSERT_GT(rank0, 0);
  EXPECT_FALSE(ProcessAlive(rank0));
  EXPECT_EQ(Queued(JobId(*launched)), "");
}

TEST_F(SlurmLauncherTest, ARetryableExitOrASignalMayBeTriedAgain) {
  {
    const GangSpec gang = TwoRankGang(dir_, WriteWorker(dir_, {"exit 1", "exec sleep 300"}));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gang> launched, MakeLauncher().Launch(gang));
    const GangStatus status = WaitForEnd(*launched);
    EXPECT_EQ(status.state, GangState::kFailed);
    EXPECT_THAT(status.reason, HasSubstr("rank 0 exited with code 1"));
    EXPECT_TRUE(status.retryable);
  }
  {
    dir_ = testing::MakeTempDir();
    const GangSpec gang = TwoRankGang(dir_, WriteWorker(dir_, {"exit 0", "kill -9 $$"}));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gang> launched, MakeLauncher().Launch(gang));
    const GangStatus status = WaitForEnd(*launched);
    EXPECT_EQ(status.state, GangState::kFailed);
    EXPECT_THAT(status.reason, HasSubstr("rank 1 was killed by signal 9"));
    EXPECT_TRUE(status.retryable);
  }
}

TEST_F(SlurmLauncherTest, StopCancelsTheJobAndEndsItsProcesses) {
  const GangSpec gang = TwoRankGang(dir_, WriteWorker(dir_, {"exec sleep 300", "exec sleep 300"}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gang> launched, MakeLauncher().Launch(gang));
  const int64_t rank0 = WaitForPid(absl::StrCat(dir_, "/pid-0"));
  const int64_t rank1 = WaitForPid(absl::StrCat(dir_, "/pid-1"));
  ASSERT_GT(rank0, 0) << slurm_->Logs();
  ASSERT_GT(rank1, 0);
  EXPECT_TRUE(ProcessAlive(rank0));
  EXPECT_EQ(launched->Poll().state, GangState::kRunning);

  const absl::Time start = absl::Now();
  launched->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  EXPECT_EQ(Queued(JobId(*launched)), "");
  EXPECT_FALSE(ProcessAlive(rank0));
  EXPECT_FALSE(ProcessAlive(rank1));
  const GangStatus status = launched->Poll();
  EXPECT_EQ(status.state, GangState::kFailed);
  EXPECT_THAT(status.reason, HasSubstr("cancelled"));
  launched->Stop();  // idempotent
}

TEST_F(SlurmLauncherTest, ABadPartitionIsRefusedWithSlurmsWords) {
  const GangSpec gang = TwoRankGang(dir_, WriteWorker(dir_, {"exit 0", "exit 0"}));
  EXPECT_THAT(MakeLauncher("nosuch").Launch(gang),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("sbatch: exit 1: sbatch: error: invalid partition specified: "
                                 "nosuch")));
}

}  // namespace
}  // namespace prolong::scheduler
