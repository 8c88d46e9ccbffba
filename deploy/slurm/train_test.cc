// deploy/slurm/train.sbatch on a real one-node Slurm cluster (munged, slurmctld and slurmd as
// scheduler/launch/local_slurm.h starts them; skipped where they cannot run), with a real
// datamixer and trainer, submitted the way its header tells an operator to:
//   - `sbatch --nodes=1 --ntasks-per-node=2 train.sbatch FLAGS` trains the stage with two srun
//     tasks, rank 0 and rank 1 (their trainers say so in the job's labelled output), rank 0
//     hosting the store on the node's name; every checkpoint's weights and AdamW state are the
//     bytes of `prolongctl train --local --nproc=2` with the same flags;
//   - a rank that fails fails the job and keeps the last good checkpoint; the same command
//     submitted again resumes from it and ends with the same bytes;
//   - a layout the job's tasks cannot hold fails the job, with the reason, before any rank.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "scheduler/launch/local_slurm.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

constexpr char kScript[] = "deploy/slurm/train.sbatch";
constexpr int kSteps = 6;  // total_tokens / batch_tokens

// A tiny Llama over the store's 300-token vocabulary.
constexpr char kConfig[] = R"({"model_type": "llama", "vocab_size": 320, "hidden_size": 32,
  "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
  "num_key_value_heads": 2, "max_position_embeddings": 256, "bos_token_id": 1,
  "eos_token_id": 2})";

// Long documents as whole sequences, short ones packed.
constexpr char kStage[] = R"(name: short
seq_len: 64
batch_tokens: 256
total_tokens: 1536
schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1}
mixture:
  - {domain: books, proportion: 0.5, packing: long}
  - {domain: web, proportion: 0.5, packing: short}
)";

std::string Runfile(const std::string& path) {
  return std::filesystem::canonical(std::filesystem::absolute(path)).string();
}

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

std::string ReadOr(const std::string& path) { return ReadFile(path).value_or(""); }

// A port nothing listens on now.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof(address);
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

// The checkpoint directories ("step-...") under `dir`, in order.
std::vector<std::string> Checkpoints(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && absl::StartsWith(name, "step-")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// What both tests share, made once: the cluster, a store, its datamixer, the job's files and
// the reference checkpoints of `prolongctl train --local --nproc=2`.
struct Shared {
  std::unique_ptr<scheduler::LocalSlurm> slurm;
  std::string dir;
  std::string bin;
  std::unique_ptr<testing::Subprocess> datamixer;
  std::vector<std::string> job_flags;  // all but --checkpoint-dir
  std::string reference_dir;
};

class TrainScriptTest : public ::testing::Test {
 protected:
  static Shared* shared_;

  void SetUp() override {
    const std::string unavailable = scheduler::LocalSlurm::UnavailableReason();
    if (!unavailable.empty()) GTEST_SKIP() << unavailable;
    if (shared_ == nullptr) {
      shared_ = new Shared;
      ASSERT_NO_FATAL_FAILURE(Prepare(*shared_));
    }
    ASSERT_NE(shared_->slurm, nullptr);
    ASSERT_FALSE(shared_->reference_dir.empty()) << "the shared setup failed";
    if (shared_->slurm->cpus() < 2) GTEST_SKIP() << "two ranks need a node with 2 CPUs";
  }

  static void TearDownTestSuite() {
    delete shared_;  // Cancels what is left, stops the daemons and the datamixer.
    shared_ = nullptr;
  }

  static testing::RunResult Command(std::vector<std::string> argv,
                                    absl::Duration timeout = absl::Seconds(60)) {
    if (shared_->slurm != nullptr) {
      argv.insert(argv.begin(), {"/usr/bin/env", "SLURM_CONF=" + shared_->slurm->conf_path()});
    }
    absl::StatusOr<testing::RunResult> result = testing::Run(argv, timeout);
    EXPECT_OK(result.status()) << absl::StrJoin(argv, " ");
    return result.ok() ? *result : testing::RunResult{};
  }

  static void Prepare(Shared& s) {
    auto slurm = scheduler::LocalSlurm::Start();
    ASSERT_OK(slurm);
    s.slurm = *std::move(slurm);
    s.dir = testing::MakeTempDir();
    // PROLONG_BIN: the trainer in a directory of its own, as an installation has it.
    s.bin = s.dir + "/bin";
    std::filesystem::create_directories(s.bin);
    std::filesystem::create_symlink(Runfile("services/trainer/trainer"), s.bin + "/trainer");
    const std::string prolongctl = Runfile("services/prolongctl/prolongctl");

    // The store as an operator fills one: a tokenizer trained on the text, then "books" (long
    // documents) and "web" (short ones) ingested with it.
    std::filesystem::create_directories(s.dir + "/text");
    std::vector<std::string> books, web;
    for (int d = 0; d < 160; ++d) {
      const bool book = d < 24;
      std::string text;
      for (int w = 0; w < (book ? 200 : 12 + d % 30); ++w) {
        absl::StrAppend(&text, "word", (d * 7 + w * 3) % 50, w % 9 == 8 ? ".\n" : " ");
      }
      (book ? books : web).push_back(Write(absl::StrCat(s.dir, "/text/doc", d, ".txt"), text));
    }
    std::vector<std::string> train = {prolongctl, "tokenizer", "train", "--vocab-size=300",
                                      "--out=" + s.dir + "/tokenizer"};
    for (const auto* files : {&books, &web}) {
      for (const std::string& file : *files) train.push_back("--input=" + file);
    }
    testing::RunResult result = Command(train, absl::Seconds(120));
    ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
    for (const auto& [domain, files] : {std::pair{"books", &books}, std::pair{"web", &web}}) {
      std::vector<std::string> ingest = {prolongctl,
                                         "data",
                                         "ingest",
                                         "--store=" + s.dir + "/store",
                                         absl::StrCat("--domain=", domain),
                                         "--tokenizer=" + s.dir + "/tokenizer.model"};
      ingest.insert(ingest.end(), files->begin(), files->end());
      result = Command(ingest, absl::Seconds(120));
      ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
    }

    auto datamixer = testing::Subprocess::Start({Runfile("services/datamixer/datamixer"),
                                                 "--store=" + s.dir + "/store",
                                                 "--address=127.0.0.1:0", "--metrics-address=off"});
    ASSERT_OK(datamixer);
    s.datamixer = *std::move(datamixer);
    absl::StatusOr<std::string> ready = s.datamixer->ReadStdoutLine(absl::Seconds(60));
    ASSERT_OK(ready) << s.datamixer->Stderr();
    std::smatch address;
    ASSERT_TRUE(std::regex_search(*ready, address, std::regex(R"(grpc=(\S+))"))) << *ready;

    s.job_flags = {"--datamixer=" + address[1].str(),
                   "--stage=" + Write(s.dir + "/stage.yaml", kStage),
                   "--model-config=" + Write(s.dir + "/config.json", kConfig),
                   "--seed=3",
                   "--checkpoint-every=2",
                   "--deterministic",
                   "--precision=fp32",
                   "--device=cpu",
                   "--rendezvous-timeout-seconds=60"};
    std::vector<std::string> reference = {prolongctl, "train", "--local", "--nproc=2",
                                          "--checkpoint-dir=" + s.dir + "/reference"};
    reference.insert(reference.end(), s.job_flags.begin(), s.job_flags.end());
    result = Command(reference, absl::Seconds(300));
    ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
    ASSERT_EQ(Checkpoints(s.dir + "/reference").size(), kSteps / 2);
    s.reference_dir = s.dir + "/reference";
  }

  std::string Logs(const std::string& job) const {
    return absl::StrCat(shared_->slurm->Logs(), "\n--- the job's output:\n", Output(job));
  }

  std::string Output(const std::string& job) const {
    return ReadOr(absl::StrCat(shared_->dir, "/train-", job, ".out"));
  }

  // `sbatch` of the script on one node with two tasks, as its header says; the job id.
  std::string Submit(const std::string& checkpoint_dir, std::vector<std::string> extra = {}) {
    // The two ranks need both of the node's CPUs: nothing else may hold them.
    const testing::RunResult queued = Command({"squeue", "-h", "-o", "%i %T"});
    EXPECT_EQ(absl::StripAsciiWhitespace(queued.stdout_text), "") << "jobs already queued";
    std::vector<std::string> argv = {"/usr/bin/env",
                                     "PROLONG_BIN=" + shared_->bin,
                                     absl::StrCat("PROLONG_RENDEZVOUS_PORT=", FreePort()),
                                     "sbatch",
                                     "--parsable",
                                     "--partition=" + shared_->slurm->partition(),
                                     "--nodes=1",
                                     "--ntasks-per-node=2",
                                     "--output=" + shared_->dir + "/train-%j.out",
                                     Runfile(kScript)};
    argv.insert(argv.end(), shared_->job_flags.begin(), shared_->job_flags.end());
    argv.push_back("--checkpoint-dir=" + checkpoint_dir);
    argv.insert(argv.end(), extra.begin(), extra.end());
    const testing::RunResult submitted = Command(argv);
    EXPECT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
    return std::string(absl::StripAsciiWhitespace(submitted.stdout_text));
  }

  // Waits until the job has left the queue; its JobState and ExitCode.
  std::pair<std::string, std::string> WaitForEnd(const std::string& job) {
    const absl::Time deadline = absl::Now() + absl::Seconds(240);
    while (true) {
      const testing::RunResult queued = Command({"squeue", "-h", "-j", job, "-o", "%i"});
      if (queued.exit_code == 0 && absl::StripAsciiWhitespace(queued.stdout_text).empty()) break;
      if (absl::Now() > deadline) {
        ADD_FAILURE() << "job " << job << " still queued" << Logs(job);
        return {};
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    const testing::RunResult shown = Command({"scontrol", "show", "job", job});
    std::smatch state, exit_code;
    std::regex_search(shown.stdout_text, state, std::regex(R"(JobState=(\S+))"));
    std::regex_search(shown.stdout_text, exit_code, std::regex(R"(ExitCode=(\S+))"));
    return {state.size() > 1 ? state[1].str() : shown.stdout_text,
            exit_code.size() > 1 ? exit_code[1].str() : ""};
  }

  // `dir` holds the reference's checkpoints, with its bytes.
  void ExpectReferenceBytes(const std::string& dir, const std::string& job) {
    const std::vector<std::string> expected = Checkpoints(shared_->reference_dir);
    ASSERT_EQ(Checkpoints(dir), expected) << Logs(job);
    for (const std::string& name : expected) {
      for (const char* file : {"model/model.safetensors", "optimizer.safetensors"}) {
        const std::string ours = ReadOr(absl::StrCat(dir, "/", name, "/", file));
        EXPECT_FALSE(ours.empty()) << name << "/" << file;
        EXPECT_TRUE(ours == ReadOr(absl::StrCat(shared_->reference_dir, "/", name, "/", file)))
            << name << "/" << file << " differs from prolongctl train --local's";
      }
    }
  }
};

Shared* TrainScriptTest::shared_ = nullptr;

TEST_F(TrainScriptTest, TwoTasksTrainTheBytesOfProlongctlTrainLocal) {
  const std::string checkpoint_dir = shared_->dir + "/slurm";
  const std::string job = Submit(checkpoint_dir);
  ASSERT_FALSE(job.empty());
  const auto [state, exit_code] = WaitForEnd(job);
  ASSERT_EQ(state, "COMPLETED") << Logs(job);
  EXPECT_EQ(exit_code, "0:0");
  ExpectReferenceBytes(checkpoint_dir, job);

  // srun labels each line with its task; each task's trainer says which rank it is.
  const std::string output = Output(job);
  std::set<std::pair<std::string, std::string>> ranks;
  const std::regex rank_line(R"((^|\n) *(\d+): [^\n]*trainer rank (\d+) of (\d+))");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), rank_line);
       it != std::sregex_iterator(); ++it) {
    ranks.insert({(*it)[2].str(), (*it)[3].str() + " of " + (*it)[4].str()});
  }
  EXPECT_EQ(ranks,
            (std::set<std::pair<std::string, std::string>>{{"0", "0 of 2"}, {"1", "1 of 2"}}))
      << output;
  // Rank 0's store on the job's first node, by its name.
  EXPECT_TRUE(std::regex_search(
      output, std::regex("2 ranks \\(dp 2 x cp 1\\) on 1 node\\(s\\) " + shared_->slurm->node() +
                         ", rendezvous " + shared_->slurm->node() + ":[1-9]")))
      << output;
  EXPECT_TRUE(std::regex_search(
      output, std::regex(R"((^|\n) *0: [^\n]*rendezvous=)" + shared_->slurm->node() + ":[1-9]")))
      << output;
}

TEST_F(TrainScriptTest, AFailedJobSubmittedAgainResumesFromItsNewestCheckpoint) {
  const std::string checkpoint_dir = shared_->dir + "/resumed";
  // A loss that is not finite in the fourth step fails both ranks before its checkpoint.
  const std::string failing = Submit(checkpoint_dir, {"--inject-nonfinite-at-step=3"});
  ASSERT_FALSE(failing.empty());
  const auto [failed_state, failed_exit] = WaitForEnd(failing);
  EXPECT_EQ(failed_state, "FAILED") << Logs(failing);
  EXPECT_NE(failed_exit, "0:0");
  EXPECT_EQ(Checkpoints(checkpoint_dir), std::vector<std::string>{"step-00000002"})
      << Logs(failing);

  const std::string job = Submit(checkpoint_dir);
  ASSERT_FALSE(job.empty());
  const auto [state, exit_code] = WaitForEnd(job);
  ASSERT_EQ(state, "COMPLETED") << Logs(job);
  EXPECT_TRUE(std::regex_search(
      Output(job), std::regex(R"(0: [^\n]*resumed from \S*step-00000002: step 2 of 6)")))
      << Output(job);
  ExpectReferenceBytes(checkpoint_dir, job);
}

TEST_F(TrainScriptTest, AGeometryThatDoesNotFitFailsTheJobWithItsReason) {
  const std::string job = Submit(shared_->dir + "/misfit", {"--cp=3"});
  ASSERT_FALSE(job.empty());
  const auto [state, exit_code] = WaitForEnd(job);
  EXPECT_EQ(state, "FAILED") << Logs(job);
  EXPECT_TRUE(absl::StrContains(Output(job), "prolong-train: cp (3) must divide the job's 2 tasks"))
      << Output(job);
  EXPECT_FALSE(absl::StrContains(Output(job), "trainer listening")) << Output(job);
}

}  // namespace
}  // namespace prolong
