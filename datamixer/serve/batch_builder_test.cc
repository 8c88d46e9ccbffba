#include "datamixer/serve/batch_builder.h"

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "datamixer/plan/data_index.h"
#include "datamixer/plan/rank_balance.h"
#include "datamixer/serve/span_arrays.h"
#include "datamixer/serve/test_corpus.h"
#include "datamixer/store/stats.h"
#include "datamixer/store/store.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::serve {
namespace {

// A process's view: the store opened read-only, its index loaded, the plan built.
struct Server {
  std::unique_ptr<store::Store> store;
  std::shared_ptr<const plan::StagePlan> plan;
  std::unique_ptr<BatchBuilder> builder;

  Server(const std::string& dir, const v1::StageSpec& stage, uint64_t seed) {
    auto opened = store::Store::OpenForReading(dir);
    EXPECT_OK(opened);
    store = *std::move(opened);
    auto index = plan::LoadDataIndex(store->shard());
    EXPECT_OK(index);
    auto built = plan::StagePlan::Build(stage, seed, *index);
    EXPECT_OK(built);
    plan = *built;
    builder = std::make_unique<BatchBuilder>(plan, &store->shard());
  }
};

class BatchBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    corpus_ = testing::WriteTestCorpus(prolong::testing::MakeTempDir() + "/store", 5);
  }
  testing::TestCorpus corpus_;
};

TEST_F(BatchBuilderTest, TheIndexHoldsEveryDomainAndTheStoreFingerprint) {
  auto store = store::Store::OpenForReading(corpus_.store_dir);
  ASSERT_OK(store);
  auto index = plan::LoadDataIndex((*store)->shard());
  ASSERT_OK(index);
  EXPECT_EQ((*index)->fingerprint, *store::ComputeFingerprint((*store)->shard()));
  ASSERT_EQ((*index)->domains.size(), 3u);
  EXPECT_EQ((*index)->domains[0].name, "books");
  EXPECT_EQ((*index)->domains[1].name, "chat");
  EXPECT_EQ((*index)->domains[2].name, "web");
  for (const plan::DomainIndex& domain : (*index)->domains) {
    int64_t tokens = 0;
    for (int64_t i = 0; i < domain.documents(); ++i) {
      const store::Document& document = corpus_.documents.at({domain.name, domain.id(i)});
      EXPECT_EQ((*domain.lengths)[i], static_cast<int64_t>(document.tokens.size()));
      tokens += (*domain.lengths)[i];
    }
    EXPECT_EQ(domain.tokens, tokens);
  }
}

// Across all (dp, cp) ranks every token of every global batch is delivered exactly once, with
// the right target, loss mask, position and document boundaries.
TEST_F(BatchBuilderTest, EveryTokenOfEveryGlobalBatchReachesExactlyOneRank) {
  // seq_len 50 divides by neither 2 x 3 nor 2 x 4: chunks of unequal size.
  Server server(corpus_.store_dir, testing::TestStage(50, 12, 5), 9);
  const plan::StagePlan& plan = *server.plan;
  for (const auto& [dp_size, cp_size] :
       {std::pair{1, 1}, {2, 1}, {1, 2}, {3, 3}, {4, 2}, {12, 1}, {2, 4}}) {
    SCOPED_TRACE(::testing::Message() << "dp " << dp_size << " cp " << cp_size);
    for (int64_t step = 0; step < plan.steps(); ++step) {
      std::map<int64_t, std::vector<int>> delivered;  // sequence index -> count per token
      int64_t trained = 0;
      for (int dp = 0; dp < dp_size; ++dp) {
        for (int cp = 0; cp < cp_size; ++cp) {
          auto built = server.builder->Build(step, {dp, dp_size, cp, cp_size});
          ASSERT_OK(built);
          EXPECT_EQ(built->batch.step(), step);
          EXPECT_EQ(built->batch.sequences_size(), 12 / dp_size);
          ASSERT_OK_AND_ASSIGN(const std::vector<int64_t> share,
                               plan::DataParallelSequences(
                                   plan::AttentionCosts(plan.GlobalBatch(step)), {dp, dp_size}));
          ASSERT_EQ(share.size(), 12u / dp_size);
          for (int k = 0; k < built->batch.sequences_size(); ++k) {
            const v1::SequenceSlice& slice = built->batch.sequences(k);
            const int64_t index = slice.sequence_index();
            EXPECT_EQ(index, step * 12 + share[k])
                << "the balanced share, the same on every cp rank of a replica";
            const plan::PlannedSequence sequence = plan.Sequence(index);
            const testing::SequenceArrays expected = ExpectedArrays(plan, sequence, corpus_);
            EXPECT_EQ(std::vector<int32_t>(slice.cu_seqlens().begin(), slice.cu_seqlens().end()),
                      expected.cu_seqlens);
            EXPECT_EQ(slice.sequence_length(), 50);
            EXPECT_EQ(slice.domain(), plan.domains()[sequence.domain].data->name);
            std::vector<int>& counts = delivered[index];
            counts.resize(50, 0);
            for (const v1::TokenSpan& span : slice.spans()) {
              const SpanArrays arrays = ExpandSpan(slice, span);
              const std::vector<uint32_t>& tokens = arrays.token_ids;
              const std::vector<uint32_t>& targets = arrays.target_ids;
              const std::vector<uint8_t>& mask = arrays.loss_mask;
              const std::vector<int32_t>& positions = arrays.position_ids;
              EXPECT_EQ(span.token_ids().size(), 4 * tokens.size()) << "5 bytes a token";
              EXPECT_EQ(span.loss_mask().size(), tokens.size());
              ASSERT_EQ(targets.size(), tokens.size());
              ASSERT_EQ(mask.size(), tokens.size());
              ASSERT_EQ(positions.size(), tokens.size());
              for (size_t k = 0; k < tokens.size(); ++k) {
                const size_t i = span.offset() + k;
                ASSERT_LT(i, 50u);
                ++counts[i];
                EXPECT_EQ(tokens[k], expected.token_ids[i]) << "token " << i;
                EXPECT_EQ(targets[k], expected.target_ids[i]) << "token " << i;
                EXPECT_EQ(mask[k], expected.loss_mask[i]) << "token " << i;
                EXPECT_EQ(positions[k], expected.position_ids[i]) << "token " << i;
                trained += mask[k];
              }
            }
          }
          EXPECT_EQ(built->batch.global_target_tokens(), *server.builder->GlobalTargetTokens(step));
        }
      }
      ASSERT_EQ(delivered.size(), 12u) << "step " << step;
      for (const auto& [index, counts] : delivered) {
        for (int i = 0; i < 50; ++i) {
          ASSERT_EQ(counts[i], 1) << "sequence " << index << " token " << i;
        }
      }
      EXPECT_EQ(trained, *server.builder->GlobalTargetTokens(step))
          << "the loss denominator counts exactly the trained tokens of every rank";
    }
  }
}

// The global batch as one list: every rank's sequences in plan order, serialized. Which rank
// trains which sequence depends on the data-parallel size; the set does not.
std::string GlobalBatchBytes(const BatchBuilder& builder, int64_t step, int dp_size) {
  std::map<int64_t, std::string> sequences;
  for (int dp = 0; dp < dp_size; ++dp) {
    auto built = builder.Build(step, {dp, dp_size, 0, 1});
    EXPECT_OK(built);
    for (const v1::SequenceSlice& slice : built->batch.sequences()) {
      EXPECT_TRUE(sequences.emplace(slice.sequence_index(), slice.SerializeAsString()).second)
          << "sequence " << slice.sequence_index() << " sent twice";
    }
    EXPECT_EQ(built->batch.global_target_tokens(), *builder.GlobalTargetTokens(step));
  }
  std::string bytes;
  for (const auto& [index, slice] : sequences) bytes += slice;
  return bytes;
}

TEST_F(BatchBuilderTest, AResumedRunReceivesTheSameBatchesOnAnyDataParallelSize) {
  const v1::StageSpec stage = testing::TestStage(64, 8, 12);
  Server original(corpus_.store_dir, stage, 21);
  std::vector<std::string> stream;  // What an uninterrupted dp=2 run receives, per step.
  for (int64_t step = 0; step < original.plan->steps(); ++step) {
    std::string bytes;
    for (int dp = 0; dp < 2; ++dp) {
      bytes += original.builder->Build(step, {dp, 2, 0, 1})->batch.SerializeAsString();
    }
    stream.push_back(bytes);
  }
  std::mt19937 rng(3);
  for (int trial = 0; trial < 4; ++trial) {
    // A new process resumes from (plan id, step): same plan, same batches, bit for bit.
    const int64_t resume = static_cast<int64_t>(rng() % 12);
    Server resumed(corpus_.store_dir, stage, 21);
    EXPECT_EQ(resumed.plan->id(), original.plan->id());
    for (int64_t step = resume; step < 12; ++step) {
      std::string bytes;
      for (int dp = 0; dp < 2; ++dp) {
        bytes += resumed.builder->Build(step, {dp, 2, 0, 1})->batch.SerializeAsString();
      }
      ASSERT_EQ(bytes, stream[step]) << "resumed at " << resume << ", step " << step;
    }
    // On 1, 4 or 8 data-parallel ranks instead of 2, the global batches are the same.
    for (int64_t step = resume; step < 12; ++step) {
      const std::string expected = GlobalBatchBytes(*original.builder, step, 2);
      for (int dp_size : {1, 4, 8}) {
        ASSERT_EQ(GlobalBatchBytes(*resumed.builder, step, dp_size), expected)
            << "step " << step << " on " << dp_size << " ranks";
      }
    }
  }
}

// Each rank trains its balanced share, micro-step by micro-step: never more unevenly than the
// contiguous slices did, whether or not the rank says its micro-batch size.
TEST_F(BatchBuilderTest, RanksReceiveSharesThatBalanceEveryMicroStep) {
  Server server(corpus_.store_dir, testing::TestStage(64, 8, 12), 4);
  const plan::StagePlan& plan = *server.plan;
  double contiguous = 0, balanced = 0;
  for (int64_t step = 0; step < plan.steps(); ++step) {
    const std::vector<double> costs = plan::AttentionCosts(plan.GlobalBatch(step));
    for (int64_t micro : {0, 1, 2}) {
      std::vector<std::vector<int64_t>> layout;
      for (int dp = 0; dp < 4; ++dp) {
        ASSERT_OK_AND_ASSIGN(const BuiltBatch built,
                             server.builder->Build(step, {dp, 4, 0, 1, micro}));
        std::vector<int64_t>& positions = layout.emplace_back();
        for (const v1::SequenceSlice& slice : built.batch.sequences()) {
          positions.push_back(slice.sequence_index() - step * 8);
        }
      }
      ASSERT_OK_AND_ASSIGN(const std::vector<std::vector<int64_t>> expected,
                           plan::BalanceDataParallel(costs, 4, micro));
      EXPECT_EQ(layout, expected) << "step " << step << " micro-batch " << micro;
      const double before = plan::StepImbalance(costs, plan::ContiguousDataParallel(8, 4), micro);
      const double after = plan::StepImbalance(costs, layout, micro);
      EXPECT_LE(after, before) << "step " << step << " micro-batch " << micro;
      contiguous += before;
      balanced += after;
    }
  }
  EXPECT_LT(balanced, contiguous);
}

TEST_F(BatchBuilderTest, BadRanksAndStepsAreRefusedWithTheFieldNamed) {
  Server server(corpus_.store_dir, testing::TestStage(64, 8, 3), 1);
  auto status = [&](int64_t step, plan::Rank rank) {
    return server.builder->Build(step, rank).status().ToString();
  };
  EXPECT_EQ(status(0, {2, 2, 0, 1}), "INVALID_ARGUMENT: rank.dp_rank: must be in [0, 2), got 2");
  EXPECT_EQ(status(0, {0, 3, 0, 1}),
            "INVALID_ARGUMENT: rank.dp_size: must divide the 8 sequences of a global batch, got 3");
  EXPECT_EQ(status(0, {0, 2, 0, 1, -1}),
            "INVALID_ARGUMENT: rank.micro_batch_sequences: must not be negative, got -1");
  EXPECT_EQ(status(3, {0, 1, 0, 1}), "OUT_OF_RANGE: step: must be in [0, 3), got 3");
  EXPECT_EQ(status(-1, {0, 1, 0, 1}), "OUT_OF_RANGE: step: must be in [0, 3), got -1");
}

}  // namespace
}  // namespace prolong::serve
