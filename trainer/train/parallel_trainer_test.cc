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
// the same bits as the unsharded gang. Sharded weights (ZeRO-3) match one process in every layout
// (N = 2 and 4, with context parallelism under each scheme, with selective checkpointing, and
// hybrid: sharded in groups, replicated across them), each rank holding its blocks of the
// parameters and gradients, a quarter of the bytes at N = 4 and one layer's whole weights at a
// time besides the root's. Every gang saves a checkpoint after its first step (whole weights,
// the full AdamW state); a gang resuming from it, with or without sharding, continues exactly
// like the gang that wrote it, and a gang of another size or sharding within the tolerance.

#include <algorithm>
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
  bool shard_weights = false;  // needs checkpointing
  int shard_group = 0;         // with shard_weights: ranks per copy of the weights; 0: all
  std::string precision = "fp32";

  std::string Name() const {
    return absl::StrCat(
        "dp ", dp, " cp ", cp, " micro-batch ", micro_batch_sequences,
        checkpointing ? " checkpointing" : "", keep_attention ? " keeping attention" : "",
        overlap ? "" : " no-overlap", shard ? " sharded" : "",
        shard_weights ? absl::StrCat(" sharded weights in groups of ", ShardRanks()) : "",
        resume_from.empty() ? "" : " resumed", " ", cp_scheme, " ", precision);
  }
  // Ranks among which each parameter is cut, with sharded weights.
  int ShardRanks() const { return shard_group > 0 ? shard_group : dp * cp; }
};

// What rank `rank` of `gang` holds of a whole tensor: all of it, or with sharded weights its
// block, rows cut into ceil(rows / N) per rank and the last block padded with zeros.
torch::Tensor Held(const torch::Tensor& whole, const Gang& gang, int rank) {
  if (!gang.shard_weights) return whole;
  const int ranks = gang.ShardRanks();
  const int64_t rows = whole.size(0), block = (rows + ranks - 1) / ranks;
  const int64_t begin = std::min(rows, (rank % ranks) * block);
  const int64_t end = std::min(rows, begin + block);
  std::vector<int64_t> shape = whole.sizes().vec();
  shape[0] = block;
  torch::Tensor held = torch::zeros(shape, whole.options());
  held.narrow(0, 0, end - begin).copy_(whole.narrow(0, begin, end - begin));
  return held;
}

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
        if (gang.shard_weights) {
          argv.push_back("--shard-weights");
          argv.push_back(absl::StrCat("--shard-group-size=", gang.shard_group));
        }
        argv.push_back("--cp-scheme=" + gang.cp_scheme);
        argv.push_back("--precision=" + gang.precision);
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
      ExpectClose(got[i], Held(reference.parameters[i], gang, rank), absl::StrCat("parameter ", i));
      ExpectClose(got[n + i], Held(reference.gradients[i], gang, rank),
                  absl::StrCat("first step's gradient ", i));
    }
    const torch::Tensor metrics = got.back();
    ASSERT_EQ(metrics.numel(), 11);
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
    ASSERT_EQ(got.back().numel(), 11) << what;
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
    ASSERT_EQ(metrics.numel(), 7) << what;
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

// A gang resumed from another gang's checkpoint against one process: after the second step,
// every rank's parameters (what it holds of them) and rank 0's optimizer state within the
// tolerance.
void ExpectResumedMatchesOneProcess(const Gang& gang, const std::string& what) {
  const testing::RunResult& reference = SingleProcess();
  const GangResult& run = RunGang(gang);
  ASSERT_EQ(run.ranks.size(), static_cast<size_t>(gang.dp * gang.cp)) << what;
  for (size_t rank = 0; rank < run.ranks.size(); ++rank) {
    ASSERT_EQ(run.ranks[rank].size(), reference.parameters.size() + 1) << what;
    for (size_t i = 0; i < reference.parameters.size(); ++i) {
      ExpectClose(run.ranks[rank][i], Held(reference.parameters[i], gang, static_cast<int>(rank)),
                  absl::StrCat(what, ": rank ", rank, " parameter ", i));
    }
  }
  const std::vector<torch::Tensor> optimizer = ReferenceOptimizer();
  ASSERT_EQ(run.optimizer.size(), optimizer.size()) << what;
  for (size_t i = 0; i < optimizer.size(); ++i) {
    ExpectClose(run.optimizer[i], optimizer[i], absl::StrCat(what, ": optimizer ", i));
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
  ExpectResumedMatchesOneProcess(resumed, "2 x 2 resumed");
}

Gang ShardedWeights(Gang gang, int group = 0) {
  gang.shard_weights = true;
  gang.shard_group = group;
  return gang;
}

// Gradient accumulation included: with dp 2 each rank runs two micro-batches.
TEST(ParallelTrainerTest, ShardedWeightsMatchOneProcess) {
  for (const Gang& gang : {Gang{2, 1, 1, true}, Gang{4, 1, 1, true}, Gang{2, 2, 1, true}}) {
    ExpectMatchesOneProcess(ShardedWeights(gang));
  }
}

TEST(ParallelTrainerTest, ShardedWeightsComposeWithEveryCpSchemeAndSelectiveCheckpointing) {
  for (const std::string scheme : {"ring", "ulysses"}) {
    Gang gang = ShardedWeights({2, 2, 1, true});
    gang.cp_scheme = scheme;
    ExpectMatchesOneProcess(gang);
  }
  Gang selective = ShardedWeights({2, 2, 1, true});
  selective.keep_attention = true;
  ExpectMatchesOneProcess(selective);
}

// Hybrid: two copies of the weights, each sharded over two ranks (with cp 2, over a cp group).
TEST(ParallelTrainerTest, HybridShardedWeightsMatchOneProcess) {
  ExpectMatchesOneProcess(ShardedWeights({4, 1, 1, true}, 2));
  ExpectMatchesOneProcess(ShardedWeights({2, 2, 1, true}, 2));
}

// Under mixed precision the layers' matrices are gathered in bfloat16, the values autocast
// would cast them to: the sharded gang trains like the unsharded one under the same casts, and
// its layers' whole weights take half the bytes.
TEST(ParallelTrainerTest, ShardedWeightsGatherBf16MatricesUnderMixedPrecision) {
  Gang unsharded{2, 1, 1, true};
  unsharded.precision = "bf16";
  const Gang sharded = ShardedWeights(unsharded);
  const GangResult& reference = RunGang(unsharded);
  const GangResult& run = RunGang(sharded);
  ASSERT_EQ(run.ranks.size(), 2u);
  ASSERT_EQ(reference.ranks.size(), 2u);
  const Gang fp32 = ShardedWeights({2, 1, 1, true});
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE(absl::StrCat("rank ", rank));
    const size_t n = (run.ranks[rank].size() - 1) / 2;
    for (size_t i = 0; i < n; ++i) {
      ExpectClose(run.ranks[rank][i], Held(reference.ranks[rank][i], sharded, rank),
                  absl::StrCat("parameter ", i));
    }
    for (int step = 0; step < 2; ++step) {
      EXPECT_NEAR(run.ranks[rank].back()[step].item<double>(),
                  reference.ranks[rank].back()[step].item<double>(),
                  1e-6 * reference.ranks[rank].back()[step].item<double>())
          << "loss of step " << step;
    }
    EXPECT_LT(run.ranks[rank].back()[10].item<double>(),
              RunGang(fp32).ranks[rank].back()[10].item<double>())
        << "whole weights held at once";
  }
}

TEST(ParallelTrainerTest, ShardedWeightsHoldAQuarterAtFourRanksAndTwoLayersAtATime) {
  const Gang unsharded{4, 1, 1, true};
  const Gang sharded = ShardedWeights(unsharded);
  // The whole weights of the root unit (embedding, final norm, lm_head) and of a layer.
  auto model = model::CreateLlama(model::testing::TinyLlamaConfig(), kSeed);
  ASSERT_OK(model);
  int64_t layer_bytes = 0;
  for (const torch::Tensor& p : (*model)->model->decoder_layers()[0]->parameters()) {
    layer_bytes += p.nbytes();
  }
  int64_t all_bytes = 0;
  for (const torch::Tensor& p : (*model)->parameters()) all_bytes += p.nbytes();
  const int64_t root_bytes =
      all_bytes - layer_bytes * static_cast<int64_t>((*model)->model->decoder_layers().size());

  ASSERT_EQ(RunGang(sharded).ranks.size(), 4u);
  for (int rank = 0; rank < 4; ++rank) {
    // Four copies of the weights' bytes (weights, gradients and both moments), whole or cut
    // in four (padding aside).
    const double whole = RunGang(unsharded).ranks[rank].back()[9].item<double>();
    const double held = RunGang(sharded).ranks[rank].back()[9].item<double>();
    EXPECT_EQ(whole, 4.0 * all_bytes) << rank;
    EXPECT_GE(held, whole / 4) << rank;
    EXPECT_LE(held, 0.3 * whole) << rank;
    // The layer gathered and the next one arriving (prefetched).
    EXPECT_EQ(RunGang(sharded).ranks[rank].back()[10].item<double>(), root_bytes + 2 * layer_bytes)
        << rank;
    EXPECT_EQ(RunGang(unsharded).ranks[rank].back()[10].item<double>(), 0) << rank;
  }
}

TEST(ParallelTrainerTest, ShardedWeightsCheckpointsResumeWithAnotherSizeOrWithoutSharding) {
  const Gang sharded = ShardedWeights({2, 1, 1, true});
  const GangResult& full = RunGang(sharded);
  ASSERT_FALSE(full.ranks.empty());
  Gang resumed = sharded;
  resumed.resume_from = full.checkpoint_dir;
  ExpectContinuesExactly(RunGang(resumed), full, "sharded weights, resumed alike");

  resumed = ShardedWeights({4, 1, 1, true});
  resumed.resume_from = full.checkpoint_dir;
  ExpectResumedMatchesOneProcess(resumed, "saved by 2 shards, resumed by 4");
  resumed = Gang{2, 1, 1};
  resumed.resume_from = full.checkpoint_dir;
  ExpectResumedMatchesOneProcess(resumed, "saved by shards, resumed unsharded");
  resumed = sharded;
  resumed.resume_from = RunGang(Gang{2, 1, 1}).checkpoint_dir;
  ExpectResumedMatchesOneProcess(resumed, "saved unsharded, resumed by shards");
}

}  // namespace
}  // namespace prolong::train
