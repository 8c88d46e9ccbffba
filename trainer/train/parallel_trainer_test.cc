// The training step across real processes over Gloo against one process: two optimizer steps
// of a tiny Llama on four packed sequences with several documents each, with dp = 2, cp = 2
// (zigzag chunks, documents crossing ranks) and dp x cp = 2 x 2 (with activation checkpointing,
// so recomputation repeats the context-parallel collectives), context parallelism under both
// schemes (all-gather and ring). On every rank the parameters after
// both steps and the first step's reduced gradients equal the single-process result within 1e-5
// of each tensor's largest magnitude, and the reported losses (1e-6) and gradient norms agree.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "datamixer/plan/rank_layout.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "torch/serialize.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/train/train_test_data.h"

namespace prolong::train {
namespace {

constexpr char kWorker[] = "trainer/train/train_worker";
constexpr uint64_t kSeed = 30;

const testing::RunResult& SingleProcess() {
  static const testing::RunResult* result = [] {
    testing::RunOptions options;
    options.sequences_per_micro_batch = 2;
    auto run = testing::TrainTwoSteps(kSeed, nullptr, plan::Rank{0, 1, 0, 1}, options);
    EXPECT_TRUE(run.ok()) << run.status();
    return new testing::RunResult(run.ok() ? *std::move(run) : testing::RunResult());
  }();
  return *result;
}

// Within 1e-5 of the tensor's largest magnitude.
void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected,
                 const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = expected.abs().max().item<double>();
  const double error = (actual - expected).abs().max().item<double>();
  EXPECT_LE(error, 1e-5 * scale) << what << ": largest difference " << error << " of " << scale;
}

void RunGang(int dp, int cp, int micro_batch_sequences, bool checkpointing,
             const std::string& cp_scheme = "all-gather") {
  const testing::RunResult& reference = SingleProcess();
  ASSERT_FALSE(reference.parameters.empty());
  auto store = comm::ServeStore("127.0.0.1");
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string dir = prolong::testing::MakeTempDir();
  const int world = dp * cp;
  const absl::Status gang = prolong::testing::RunGang(
      world,
      [&](int rank) {
        std::vector<std::string> argv = {
            kWorker,
            "--store=" + (*store)->address(),
            absl::StrCat("--rank=", rank),
            absl::StrCat("--world=", world),
            absl::StrCat("--dp=", dp),
            absl::StrCat("--cp=", cp),
            absl::StrCat("--seed=", kSeed),
            absl::StrCat("--micro-batch-sequences=", micro_batch_sequences),
            absl::StrCat("--out=", dir, "/rank", rank, ".pt")};
        if (checkpointing) argv.push_back("--checkpointing");
        argv.push_back("--cp-scheme=" + cp_scheme);
        return argv;
      },
      absl::Seconds(120));
  ASSERT_TRUE(gang.ok()) << gang;
  for (int rank = 0; rank < world; ++rank) {
    SCOPED_TRACE(absl::StrCat("dp ", dp, " cp ", cp, " ", cp_scheme, " rank ", rank));
    std::vector<torch::Tensor> got;
    torch::load(got, absl::StrCat(dir, "/rank", rank, ".pt"));
    const size_t n = reference.parameters.size();
    ASSERT_EQ(got.size(), 2 * n + 1);
    for (size_t i = 0; i < n; ++i) {
      ExpectClose(got[i], reference.parameters[i], absl::StrCat("parameter ", i));
      ExpectClose(got[n + i], reference.gradients[i], absl::StrCat("first step's gradient ", i));
    }
    const torch::Tensor metrics = got.back();
    ASSERT_EQ(metrics.numel(), 6);
    for (int step = 0; step < 2; ++step) {
      EXPECT_NEAR(metrics[step].item<double>(), reference.losses[step],
                  1e-6 * reference.losses[step])
          << "loss of step " << step;
      EXPECT_NEAR(metrics[2 + step].item<double>(), reference.grad_norms[step],
                  1e-5 * reference.grad_norms[step])
          << "gradient norm of step " << step;
      EXPECT_DOUBLE_EQ(metrics[4 + step].item<double>(), reference.lrs[step]);
    }
  }
}

TEST(ParallelTrainerTest, TheReferenceTrains) {
  const testing::RunResult& reference = SingleProcess();
  ASSERT_EQ(reference.losses.size(), 2u);
  // The first step's loss is the plain mean cross-entropy of the initial model.
  auto model = model::CreateLlama(testing::TinyConfig(), kSeed);
  ASSERT_TRUE(model.ok()) << model.status();
  const double plain = testing::PlainMeanCrossEntropy(**model, testing::MakeGlobalBatch(kSeed));
  EXPECT_NEAR(reference.losses[0], plain, 1e-6 * plain);
  // Steps clip (so clipping is exercised) and move parameters.
  EXPECT_GT(reference.grad_norms[0], 1.0);
}

TEST(ParallelTrainerTest, DataParallelMatchesOneProcess) { RunGang(2, 1, 1, false); }
TEST(ParallelTrainerTest, ContextParallelMatchesOneProcess) { RunGang(1, 2, 2, false); }
TEST(ParallelTrainerTest, DataAndContextParallelMatchOneProcess) { RunGang(2, 2, 1, true); }
TEST(ParallelTrainerTest, RingContextParallelMatchesOneProcess) { RunGang(1, 2, 2, false, "ring"); }
TEST(ParallelTrainerTest, DataAndRingContextParallelMatchOneProcess) {
  RunGang(2, 2, 1, true, "ring");
}

}  // namespace
}  // namespace prolong::train
