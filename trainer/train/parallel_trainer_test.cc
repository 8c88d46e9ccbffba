// The training step across real processes over Gloo against one process: two optimizer steps
// of a tiny Llama on four packed sequences with several documents each, with dp = 2, cp = 2
// (zigzag chunks, documents crossing ranks) and dp x cp = 2 x 2 (with activation checkpointing,
// so recomputation repeats the context-parallel collectives, and with selective checkpointing,
// which skips attention's), context parallelism under its three schemes (all-gather, ring and
// Ulysses). On every
// rank the parameters after both steps and the first step's reduced gradients equal the
// single-process result within 1e-5 of each tensor's largest magnitude, and the reported losses
// (1e-6) and gradient norms agree.
//
// Reducing gradients after backward instead of overlapped with it gives the same bits. ZeRO-1
// (sharded optimizer state) matches one process likewise, optimizer state included, and gives
// the same bits as the unsharded gang. Every gang saves a checkpoint after its first step (the
// full AdamW state); a gang resuming from it, with or without sharding, continues exactly like
// the gang that wrote it, and a gang of another size within the tolerance.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/plan/rank_layout.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "torch/serialize.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"
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
    EXPECT_OK(run);
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

struct Gang {
  int dp = 1;
  int cp = 1;
  int micro_batch_sequences = 1;
  bool checkpointing = false;
  bool overlap = true;
  bool keep_attention = false;  // with checkpointing: selective
  bool shard = false;
  std::string resume_from;  // a gang's checkpoint_dir: train only the second step
  std::string cp_scheme = "all-gather";

  std::string Name() const {
    return absl::StrCat("dp ", dp, " cp ", cp, " micro-batch ", micro_batch_sequences,
                        checkpointing ? " checkpointing" : "",
                        keep_attention ? " keeping attention" : "", overlap ? "" : " no-overlap",
                        shard ? " sharded" : "", resume_from.empty() ? "" : " resumed", " ",
                        cp_scheme);
  }
};

struct GangResult {
  std::vector<std::vector<torch::Tensor>> ranks;  // what each rank's train_worker saved
  std::vector<torch::Tensor> optimizer;           // rank 0's full optimizer state, by name
  std::string checkpoint_dir;                     // of the first step
};

// Runs each gang once; the tests compare gangs with each other.
const GangResult& RunGang(const Gang& gang) {
  static auto* results = new std::map<std::string, GangResult>();
  const std::string key = absl::StrCat(gang.Name(), " from ", gang.resume_from);
  if (const auto it = results->find(key); it != results->end()) return it->second;
  GangResult& result = (*results)[key];
  auto store = comm::ServeStore("127.0.0.1");
  EXPECT_OK(store);
  if (!store.ok()) return result;
  const std::string dir = prolong::testing::MakeTempDir();
  result.checkpoint_dir = dir + "/checkpoints";
  const int world = gang.dp * gang.cp;
  const absl::Status status = prolong::testing::RunGang(
      world,
      [&](int rank) {
        std::vector<std::string> argv = {
            kWorker,
            "--store=" + (*store)->address(),
            absl::StrCat("--rank=", rank),
            absl::StrCat("--world=", world),
            absl::StrCat("--dp=", gang.dp),
            absl::StrCat("--cp=", gang.cp),
            absl::StrCat("--seed=", kSeed),
            absl::StrCat("--micro-batch-sequences=", gang.micro_batch_sequences),
            absl::StrCat("--out=", dir, "/rank", rank, ".pt"),
            absl::StrCat("--out-optimizer=", dir, "/optimizer.pt")};
        if (gang.checkpointing) argv.push_back("--checkpointing");
        if (gang.keep_attention) argv.push_back("--keep-attention");
        if (!gang.overlap) argv.push_back("--no-overlap");
        if (gang.shard) argv.push_back("--shard-optimizer-state");
        argv.push_back("--cp-scheme=" + gang.cp_scheme);
        if (gang.resume_from.empty()) {
          argv.push_back("--save-after-first-step=" + result.checkpoint_dir);
        } else {
          argv.push_back("--resume-from=" + gang.resume_from);
        }
        return argv;
      },
      absl::Seconds(120));
  EXPECT_OK(status) << gang.Name();
  if (!status.ok()) return result;
  result.ranks.resize(world);
  for (int rank = 0; rank < world; ++rank) {
    torch::load(result.ranks[rank], absl::StrCat(dir, "/rank", rank, ".pt"));
  }
  torch::load(result.optimizer, dir + "/optimizer.pt");
  return result;
}

// The reference's optimizer tensors in name order, as the workers save them.
std::vector<torch::Tensor> ReferenceOptimizer() {
  std::vector<torch::Tensor> tensors;
  for (const auto& [name, tensor] : SingleProcess().optimizer_state) tensors.push_back(tensor);
  return tensors;
}

// A full two-step run on every rank, and rank 0's optimizer state, against one process.
void ExpectMatchesOneProcess(const Gang& gang) {
  const testing::RunResult& reference = SingleProcess();
  ASSERT_FALSE(reference.parameters.empty());
  const GangResult& run = RunGang(gang);
  ASSERT_EQ(run.ranks.size(), static_cast<size_t>(gang.dp * gang.cp)) << gang.Name();
  for (int rank = 0; rank < gang.dp * gang.cp; ++rank) {
    SCOPED_TRACE(absl::StrCat(gang.Name(), " rank ", rank));
    const std::vector<torch::Tensor>& got = run.ranks[rank];
    const size_t n = reference.parameters.size();
    ASSERT_EQ(got.size(), 2 * n + 1);
    for (size_t i = 0; i < n; ++i) {
      ExpectClose(got[i], reference.parameters[i], absl::StrCat("parameter ", i));
      ExpectClose(got[n + i], reference.gradients[i], absl::StrCat("first step's gradient ", i));
    }
    const torch::Tensor metrics = got.back();
    ASSERT_EQ(metrics.numel(), 9);
    for (int step = 0; step < 2; ++step) {
      EXPECT_EQ(metrics[7 + step].item<double>(), reference.attention_pairs[step])
          << "attention pairs of step " << step;
      EXPECT_NEAR(metrics[step].item<double>(), reference.losses[step],
                  1e-6 * reference.losses[step])
          << "loss of step " << step;
      EXPECT_NEAR(metrics[2 + step].item<double>(), reference.grad_norms[step],
                  1e-5 * reference.grad_norms[step])
          << "gradient norm of step " << step;
      EXPECT_DOUBLE_EQ(metrics[4 + step].item<double>(), reference.lrs[step]);
    }
  }
  const std::vector<torch::Tensor> optimizer = ReferenceOptimizer();
  ASSERT_EQ(run.optimizer.size(), optimizer.size()) << gang.Name();
  auto name = SingleProcess().optimizer_state.begin();
  for (size_t i = 0; i < optimizer.size(); ++i, ++name) {
    SCOPED_TRACE(gang.Name());
    if (name->first.rfind("step/", 0) == 0) {
      EXPECT_TRUE(torch::equal(run.optimizer[i], optimizer[i])) << name->first;
    } else {
      ExpectClose(run.optimizer[i], optimizer[i], name->first);
    }
  }
}

// Bit for bit: every rank's parameters, gradients and metrics (but where the optimizer state
// lives), and rank 0's optimizer state.
void ExpectSameBits(const GangResult& actual, const GangResult& expected, const std::string& what) {
  ASSERT_EQ(actual.ranks.size(), expected.ranks.size()) << what;
  for (size_t rank = 0; rank < actual.ranks.size(); ++rank) {
    const std::vector<torch::Tensor>& got = actual.ranks[rank];
    const std::vector<torch::Tensor>& want = expected.ranks[rank];
    ASSERT_EQ(got.size(), want.size()) << what;
    ASSERT_FALSE(got.empty()) << what;
    for (size_t i = 0; i + 1 < got.size(); ++i) {
      EXPECT_TRUE(torch::equal(got[i], want[i])) << what << ": rank " << rank << " tensor " << i;
    }
    ASSERT_EQ(got.back().numel(), 9) << what;
    // All but [6], the parameters with optimizer state on this rank.
    EXPECT_TRUE(torch::equal(got.back().narrow(0, 0, 6), want.back().narrow(0, 0, 6)))
        << what << ": rank " << rank << " metrics";
    EXPECT_TRUE(torch::equal(got.back().narrow(0, 7, 2), want.back().narrow(0, 7, 2)))
        << what << ": rank " << rank << " attention pairs";
  }
  ASSERT_EQ(actual.optimizer.size(), expected.optimizer.size()) << what;
  for (size_t i = 0; i < actual.optimizer.size(); ++i) {
    EXPECT_TRUE(torch::equal(actual.optimizer[i], expected.optimizer[i]))
        << what << ": optimizer tensor " << i;
  }
}

// A gang resumed after the first step against the gang `full` that trained both: the same
// parameters after the second step on every rank, the same second-step metrics and optimizer
// state, to the bit.
void ExpectContinuesExactly(const GangResult& resumed, const GangResult& full,
                            const std::string& what) {
  const size_t n = SingleProcess().parameters.size();
  ASSERT_EQ(resumed.ranks.size(), full.ranks.size()) << what;
  for (size_t rank = 0; rank < resumed.ranks.size(); ++rank) {
    const std::vector<torch::Tensor>& got = resumed.ranks[rank];
    const std::vector<torch::Tensor>& want = full.ranks[rank];
    ASSERT_EQ(got.size(), n + 1) << what;  // no first-step gradients
    for (size_t i = 0; i < n; ++i) {
      EXPECT_TRUE(torch::equal(got[i], want[i])) << what << ": rank " << rank << " parameter " << i;
    }
    const torch::Tensor metrics = got.back();
    const torch::Tensor full_metrics = want.back();
    ASSERT_EQ(metrics.numel(), 5) << what;
    for (int k = 0; k < 3; ++k) {  // loss, gradient norm, lr of the second step
      EXPECT_EQ(metrics[k].item<double>(), full_metrics[2 * k + 1].item<double>())
          << what << ": metric " << k;
    }
  }
  ASSERT_EQ(resumed.optimizer.size(), full.optimizer.size()) << what;
  for (size_t i = 0; i < resumed.optimizer.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed.optimizer[i], full.optimizer[i]))
        << what << ": optimizer tensor " << i;
  }
}

TEST(ParallelTrainerTest, TheReferenceTrains) {
  const testing::RunResult& reference = SingleProcess();
  ASSERT_EQ(reference.losses.size(), 2u);
  // The first step's loss is the plain mean cross-entropy of the initial model.
  auto model = model::CreateLlama(model::testing::TinyLlamaConfig(), kSeed);
  ASSERT_OK(model);
  const double plain = testing::PlainMeanCrossEntropy(**model, testing::MakeGlobalBatch(kSeed));
  EXPECT_NEAR(reference.losses[0], plain, 1e-6 * plain);
  EXPECT_EQ(reference.attention_pairs[0],
            testing::CausalAttentionPairs(testing::MakeGlobalBatch(kSeed)));
  // Steps clip (so clipping is exercised) and move parameters.
  EXPECT_GT(reference.grad_norms[0], 1.0);
}

TEST(ParallelTrainerTest, DataParallelMatchesOneProcess) { ExpectMatchesOneProcess({2, 1, 1}); }
TEST(ParallelTrainerTest, ContextParallelMatchesOneProcess) { ExpectMatchesOneProcess({1, 2, 2}); }
TEST(ParallelTrainerTest, DataAndContextParallelMatchOneProcess) {
  ExpectMatchesOneProcess({2, 2, 1, true});
}
TEST(ParallelTrainerTest, RingContextParallelMatchesOneProcess) {
  Gang ring{1, 2, 2};
  ring.cp_scheme = "ring";
  ExpectMatchesOneProcess(ring);
}
TEST(ParallelTrainerTest, DataAndRingContextParallelMatchOneProcess) {
  Gang ring{2, 2, 1, true};
  ring.cp_scheme = "ring";
  ExpectMatchesOneProcess(ring);
}

TEST(ParallelTrainerTest, UlyssesContextParallelMatchesOneProcess) {
  // Four ranks over the model's two kv heads: each kv head serves two ranks.
  for (const Gang& shape : {Gang{1, 2, 2}, Gang{1, 4, 2}, Gang{2, 2, 1, true}}) {
    Gang ulysses = shape;
    ulysses.cp_scheme = "ulysses";
    ExpectMatchesOneProcess(ulysses);
  }
}

// Selective checkpointing: the recomputation takes attention's kept result, and the ring's
// ranks all skip its forward exchanges.
TEST(ParallelTrainerTest, CheckpointingThatKeepsAttentionMatchesOneProcess) {
  for (const std::string scheme : {"all-gather", "ring", "ulysses"}) {
    Gang gang{2, 2, 1, true};
    gang.keep_attention = true;
    gang.cp_scheme = scheme;
    ExpectMatchesOneProcess(gang);
  }
}

TEST(ParallelTrainerTest, OverlappedReductionGivesTheBitsOfReducingAfterBackward) {
  for (const Gang& gang : {Gang{2, 1, 1}, Gang{2, 2, 1, true}}) {
    Gang after_backward = gang;
    after_backward.overlap = false;
    ExpectSameBits(RunGang(gang), RunGang(after_backward), gang.Name());
  }
}

TEST(ParallelTrainerTest, ShardedOptimizerStateMatchesOneProcessAndTheUnshardedGang) {
  for (const Gang& unsharded : {Gang{2, 1, 1}, Gang{2, 2, 1, true}}) {
    Gang sharded = unsharded;
    sharded.shard = true;
    ExpectMatchesOneProcess(sharded);
    ExpectSameBits(RunGang(sharded), RunGang(unsharded), sharded.Name());
    // Each parameter's state is on one rank only.
    const int64_t parameters = static_cast<int64_t>(SingleProcess().parameters.size());
    int64_t states = 0;
    for (const std::vector<torch::Tensor>& rank : RunGang(sharded).ranks) {
      const int64_t own = rank.back()[6].item<int64_t>();
      EXPECT_GT(own, 0) << sharded.Name();
      EXPECT_LT(own, parameters) << sharded.Name();
      states += own;
    }
    EXPECT_EQ(states, parameters) << sharded.Name();
    for (const std::vector<torch::Tensor>& rank : RunGang(unsharded).ranks) {
      EXPECT_EQ(rank.back()[6].item<int64_t>(), parameters) << unsharded.Name();
    }
  }
}

TEST(ParallelTrainerTest, CheckpointsResumeWithOrWithoutSharding) {
  const Gang unsharded{2, 1, 1};
  Gang sharded = unsharded;
  sharded.shard = true;
  const GangResult& full = RunGang(unsharded);
  ASSERT_FALSE(full.ranks.empty());

  Gang resumed = unsharded;
  resumed.resume_from = RunGang(sharded).checkpoint_dir;
  ExpectContinuesExactly(RunGang(resumed), full, "saved sharded, resumed unsharded");

  resumed = sharded;
  resumed.resume_from = full.checkpoint_dir;
  ExpectContinuesExactly(RunGang(resumed), full, "saved unsharded, resumed sharded");
  // Each rank kept only its share of what it loaded.
  const int64_t parameters = static_cast<int64_t>(SingleProcess().parameters.size());
  int64_t states = 0;
  for (const std::vector<torch::Tensor>& rank : RunGang(resumed).ranks) {
    const int64_t own = rank.back()[3].item<int64_t>();
    EXPECT_LT(own, parameters);
    states += own;
  }
  EXPECT_EQ(states, parameters);

  // Another layout: other owners, another reduction order.
  resumed = Gang{2, 2, 1, true};
  resumed.shard = true;
  resumed.resume_from = RunGang(sharded).checkpoint_dir;
  const GangResult& other = RunGang(resumed);
  const testing::RunResult& reference = SingleProcess();
  ASSERT_EQ(other.ranks.size(), 4u);
  for (size_t rank = 0; rank < other.ranks.size(); ++rank) {
    ASSERT_EQ(other.ranks[rank].size(), reference.parameters.size() + 1);
    for (size_t i = 0; i < reference.parameters.size(); ++i) {
      ExpectClose(other.ranks[rank][i], reference.parameters[i],
                  absl::StrCat("2 x 2 resumed: rank ", rank, " parameter ", i));
    }
  }
  const std::vector<torch::Tensor> optimizer = ReferenceOptimizer();
  ASSERT_EQ(other.optimizer.size(), optimizer.size());
  for (size_t i = 0; i < optimizer.size(); ++i) {
    ExpectClose(other.optimizer[i], optimizer[i], absl::StrCat("2 x 2 resumed: optimizer ", i));
  }
}

}  // namespace
}  // namespace prolong::train
