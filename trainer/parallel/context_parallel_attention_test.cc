// Context-parallel attention across real processes over Gloo against the plain single-process
// result: for the three schemes (all-gather, ring, Ulysses), for C in {2, 4} and for dp x cp =
// 2 x 2, every rank's outputs and gradients of q, k and v equal the rows of one process's
// attention over the whole sequence, within 1e-5. Each worker attends twice with one layout, as two
// layers do, the second time with the layouts the first gathered. The ring's outputs depend on its
// log-sum-exp merges across steps, and its dk and dv on the gradient sums coming back to their
// owner after C shifts; Ulysses's on two all-to-all exchanges each way. The schemes also run
// through the varlen-kernel machinery (plans, key order, partial blocks) with the blockwise kernel,
// as a GPU runs them with flash attention's.

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "torch/serialize.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/cp_test_data.h"

namespace prolong::parallel {
namespace {

constexpr char kWorker[] = "trainer/parallel/cp_attention_worker";

struct Reference {
  torch::Tensor out, dq, dk, dv;
};

// One process, the whole sequence, no parallelism: the worker's two layers.
Reference SingleProcess(uint64_t seed) {
  const testing::PackedSequence sequence = testing::MakePackedSequence(seed);
  torch::Tensor q = sequence.q.clone().requires_grad_();
  torch::Tensor k = sequence.k.clone().requires_grad_();
  torch::Tensor v = sequence.v.clone().requires_grad_();
  const double scale = 1.0 / std::sqrt(static_cast<double>(testing::kHeadDim));
  const torch::Tensor out =
      attention::DocumentMaskedAttention(q, k, v, sequence.layout, sequence.layout, scale);
  const torch::Tensor again = attention::DocumentMaskedAttention(
      2 * q, -k, 0.5 * v, sequence.layout, sequence.layout, scale);
  (out * sequence.weights + again * sequence.weights.cos()).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

void ExpectClose(const torch::Tensor& actual, const torch::Tensor& expected,
                 const std::string& what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  const double error = (actual - expected).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-6 * scale))
      << what << ": largest difference " << error;
}

// Runs dp x cp workers and checks each against the single-process result of its replica.
void RunGang(int dp, int cp, const std::string& scheme,
             const std::string& attention = "blockwise") {
  auto store = comm::ServeStore("127.0.0.1");
  ASSERT_OK(store);
  const std::string dir = prolong::testing::MakeTempDir();
  const int world = dp * cp;
  const absl::Status gang = prolong::testing::RunGang(
      world,
      [&](int rank) -> std::vector<std::string> {
        return {kWorker,
                "--store=" + (*store)->address(),
                absl::StrCat("--rank=", rank),
                absl::StrCat("--world=", world),
                absl::StrCat("--dp=", dp),
                absl::StrCat("--cp=", cp),
                "--cp-scheme=" + scheme,
                "--attention=" + attention,
                "--seed=40",
                absl::StrCat("--out=", dir, "/rank", rank, ".pt")};
      },
      absl::Seconds(120));
  ASSERT_OK(gang);
  for (int rank = 0; rank < world; ++rank) {
    SCOPED_TRACE(absl::StrCat(scheme, " ", attention, " dp ", dp, " cp ", cp, " rank ", rank));
    const int dp_rank = rank / cp, cp_rank = rank % cp;
    const Reference reference = SingleProcess(40 + dp_rank);
    const torch::Tensor rows = testing::ZigzagIndices(testing::kTokens, cp_rank, cp);
    std::vector<torch::Tensor> got;
    torch::load(got, absl::StrCat(dir, "/rank", rank, ".pt"));
    ASSERT_EQ(got.size(), 4u);
    ExpectClose(got[0], reference.out.index_select(0, rows), "out");
    ExpectClose(got[1], reference.dq.index_select(0, rows), "dq");
    ExpectClose(got[2], reference.dk.index_select(0, rows), "dk");
    ExpectClose(got[3], reference.dv.index_select(0, rows), "dv");
  }
}

TEST(ContextParallelAttentionTest, TwoRanksMatchOneProcess) { RunGang(1, 2, "all-gather"); }
TEST(ContextParallelAttentionTest, FourRanksMatchOneProcess) { RunGang(1, 4, "all-gather"); }
TEST(ContextParallelAttentionTest, TwoReplicasOfTwoRanksMatchOneProcess) {
  RunGang(2, 2, "all-gather");
}

TEST(ContextParallelAttentionTest, TwoRanksOfARingMatchOneProcess) { RunGang(1, 2, "ring"); }
TEST(ContextParallelAttentionTest, FourRanksOfARingMatchOneProcess) { RunGang(1, 4, "ring"); }
TEST(ContextParallelAttentionTest, TwoReplicasOfTwoRingRanksMatchOneProcess) {
  RunGang(2, 2, "ring");
}

// Ulysses: heads split instead of the sequence. Four ranks over two kv heads replicate each kv
// head to two ranks.
TEST(ContextParallelAttentionTest, TwoUlyssesRanksMatchOneProcess) { RunGang(1, 2, "ulysses"); }
TEST(ContextParallelAttentionTest, FourUlyssesRanksMatchOneProcess) { RunGang(1, 4, "ulysses"); }
TEST(ContextParallelAttentionTest, TwoReplicasOfTwoUlyssesRanksMatchOneProcess) {
  RunGang(2, 2, "ulysses");
}
TEST(ContextParallelAttentionTest, FourUlyssesRanksThroughVarlenCallsMatchOneProcess) {
  RunGang(1, 4, "ulysses", "varlen");
}

TEST(ContextParallelAttentionTest, FourRanksThroughVarlenCallsMatchOneProcess) {
  RunGang(1, 4, "all-gather", "varlen");
}
TEST(ContextParallelAttentionTest, FourRanksOfARingThroughVarlenCallsMatchOneProcess) {
  RunGang(1, 4, "ring", "varlen");
}
TEST(ContextParallelAttentionTest, TwoReplicasOfTwoRingRanksThroughVarlenCallsMatchOneProcess) {
  RunGang(2, 2, "ring", "varlen");
}

TEST(ContextParallelAttentionTest, TheTestSequenceHasDocumentsAcrossChunksAndRanks) {
  // Otherwise the tests above would not exercise cross-rank masking.
  const testing::PackedSequence sequence = testing::MakePackedSequence(40);
  const torch::Tensor document = sequence.layout.document;
  const torch::Tensor rank0 = testing::ZigzagIndices(testing::kTokens, 0, 4);
  const torch::Tensor rank1 = testing::ZigzagIndices(testing::kTokens, 1, 4);
  bool shared = false;
  for (int64_t d : std::vector<int64_t>(document.data_ptr<int64_t>(),
                                        document.data_ptr<int64_t>() + document.numel())) {
    shared |= (document.index_select(0, rank0) == d).any().item<bool>() &&
              (document.index_select(0, rank1) == d).any().item<bool>();
  }
  EXPECT_TRUE(shared) << "some document spans ranks 0 and 1";
  EXPECT_GT(std::get<0>(at::_unique2(document)).numel(), 6);
}

TEST(ContextParallelAttentionTest, TheTestSequenceMakesTheRingMergeEveryBlockAndSkipSome) {
  // With C = 4, some rank's queries see keys of every rank (C partial results to merge) and
  // some rank's see none of another's (a block skipped, whose dK and dV only pass through).
  const testing::PackedSequence sequence = testing::MakePackedSequence(40);
  const int cp = 4;
  auto sees = [&](int query_rank, int key_rank) {
    const torch::Tensor q = testing::ZigzagIndices(testing::kTokens, query_rank, cp);
    const torch::Tensor k = testing::ZigzagIndices(testing::kTokens, key_rank, cp);
    const torch::Tensor& document = sequence.layout.document;
    const torch::Tensor& position = sequence.layout.position;
    return (document.index_select(0, q).unsqueeze(1) == document.index_select(0, k).unsqueeze(0))
        .logical_and(position.index_select(0, k).unsqueeze(0) <=
                     position.index_select(0, q).unsqueeze(1))
        .any()
        .item<bool>();
  };
  bool some_sees_all = false, some_skips = false;
  for (int query_rank = 0; query_rank < cp; ++query_rank) {
    int seen = 0;
    for (int key_rank = 0; key_rank < cp; ++key_rank) seen += sees(query_rank, key_rank);
    some_sees_all |= seen == cp;
    some_skips |= seen < cp;
  }
  EXPECT_TRUE(some_sees_all);
  EXPECT_TRUE(some_skips);
}

TEST(ContextParallelAttentionTest, AMissingRankIsNamed) {
  auto store = comm::ServeStore("127.0.0.1");
  ASSERT_OK(store);
  const std::string dir = prolong::testing::MakeTempDir();
  // Ranks 0 and 2 of 3 arrive; rank 1 never does.
  std::vector<std::unique_ptr<prolong::testing::Subprocess>> workers;
  for (int rank : {0, 2}) {
    workers.push_back(*prolong::testing::Subprocess::Start(
        {kWorker, "--store=" + (*store)->address(), absl::StrCat("--rank=", rank), "--world=3",
         "--dp=3", "--cp=1", "--timeout-seconds=2", "--out=" + dir + "/x.pt"}));
  }
  for (auto& worker : workers) {
    auto exit_code = worker->Wait(absl::Seconds(60));
    ASSERT_OK(exit_code);
    EXPECT_EQ(*exit_code, 1);
    EXPECT_TRUE(absl::StrContains(worker->Stderr(), "rank 1 of 3 did not arrive within 2s"))
        << worker->Stderr();
  }
}

}  // namespace
}  // namespace prolong::parallel
