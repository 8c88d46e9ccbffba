#include "datamixer/plan/stage_plan.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::plan {
namespace {

using ::prolong::testing::StatusIs;

std::shared_ptr<const DataIndex> MakeData(
    const std::vector<std::pair<std::string, std::vector<int64_t>>>& domains,
    const std::string& fingerprint = "f1") {
  auto data = std::make_shared<DataIndex>();
  data->fingerprint = fingerprint;
  for (const auto& [name, lengths] : domains) {
    DomainIndex domain{name, "", std::make_shared<const std::vector<int64_t>>(lengths), 0};
    for (size_t i = 0; i < lengths.size(); ++i) {
      std::string id(16, '\0');
      id[0] = static_cast<char>(i);
      id[1] = static_cast<char>(i >> 8);
      domain.ids += id;
      domain.tokens += lengths[i];
    }
    data->domains.push_back(std::move(domain));
  }
  return data;
}

struct Component {
  std::string domain;
  double proportion;
  v1::Packing packing;
};

v1::StageSpec Stage(int64_t seq_len, int64_t batch_sequences, int64_t steps,
                    const std::vector<Component>& mixture, bool allow_repetition = false) {
  v1::StageSpec stage;
  stage.set_name("s1");
  stage.set_seq_len(seq_len);
  stage.set_batch_tokens(seq_len * batch_sequences);
  stage.set_total_tokens(seq_len * batch_sequences * steps);
  stage.set_allow_repetition(allow_repetition);
  for (const Component& component : mixture) {
    v1::MixtureComponent* out = stage.add_mixture();
    out->set_domain(component.domain);
    out->set_proportion(component.proportion);
    out->set_packing(component.packing);
  }
  return stage;
}

// Three domains: books (long documents), code (long), web (short documents).
std::shared_ptr<const DataIndex> Mixed() {
  std::vector<int64_t> books, code, web;
  for (int i = 0; i < 40; ++i) books.push_back(64 + 37 * i);  // 1 to 24 chunks of 64.
  for (int i = 0; i < 30; ++i) code.push_back(50 + 41 * i);
  for (int i = 0; i < 3000; ++i) web.push_back(1 + (i * 7919) % 97);
  return MakeData({{"books", books}, {"code", code}, {"web", web}});
}

const std::vector<Component> kMixture = {{"books", 0.3, v1::PACKING_LONG},
                                         {"code", 0.3, v1::PACKING_LONG},
                                         {"web", 0.4, v1::PACKING_SHORT}};

TEST(StagePlanTest, EveryBatchHoldsTheSharesExactlyAndIsOrderedByWork) {
  auto plan = StagePlan::Build(Stage(64, 8, 50, kMixture), 7, Mixed());
  ASSERT_OK(plan);
  ASSERT_EQ((*plan)->steps(), 50);
  ASSERT_EQ((*plan)->sequences_per_batch(), 8);
  const std::vector<double> shares = {0.3, 0.3, 0.4};
  std::vector<int64_t> totals(3, 0);
  for (int64_t step = 0; step < 50; ++step) {
    std::vector<int64_t> counts(3, 0);
    double previous_work = INFINITY;
    for (const PlannedSequence& sequence : (*plan)->GlobalBatch(step)) {
      ++counts[sequence.domain];
      int64_t tokens = 0;
      for (const Piece& piece : sequence.pieces) tokens += piece.length;
      EXPECT_EQ(tokens, 64);
      const double work = SumOfSquaredLengths(sequence.pieces);
      EXPECT_LE(work, previous_work) << "step " << step << ": largest work first";
      previous_work = work;
    }
    for (int d = 0; d < 3; ++d) {
      EXPECT_NEAR(static_cast<double>(counts[d]), shares[d] * 8, 1.0 - 1e-9)
          << "step " << step << " domain " << d << ": floor or ceil of the share";
      totals[d] += counts[d];
      EXPECT_LE(std::abs(static_cast<double>(totals[d]) - shares[d] * 8 * (step + 1)), 1.0);
    }
  }
  EXPECT_EQ((*plan)->domains()[0].sequences, totals[0]);
  EXPECT_EQ((*plan)->domains()[2].tokens, totals[2] * 64);
}

TEST(StagePlanTest, LongSequencesAreDistinctChunksAndShortOnesCoverDocumentsInOrder) {
  auto plan = StagePlan::Build(Stage(64, 8, 40, kMixture), 3, Mixed());
  ASSERT_OK(plan);
  std::set<std::pair<int64_t, int64_t>> chunks[2];
  std::map<int64_t, int64_t> web_next_offset;
  for (int64_t i = 0; i < 40 * 8; ++i) {
    const PlannedSequence sequence = (*plan)->Sequence(i);
    EXPECT_EQ(sequence.index, i);
    if (sequence.domain < 2) {
      ASSERT_EQ(sequence.pieces.size(), 1u);
      const Piece& piece = sequence.pieces[0];
      EXPECT_EQ(piece.offset % 64, 0);
      EXPECT_LE(piece.offset + 64,
                (*(*plan)->domains()[sequence.domain].data->lengths)[piece.document]);
      EXPECT_TRUE(chunks[sequence.domain].insert({piece.document, piece.offset}).second)
          << "a chunk is used once per epoch";
    }
  }
  // The short domain's pieces, in plan order of the packer (not of the batches), continue
  // documents where they stopped: checked through the total, every web token used at most once.
  std::map<int64_t, int64_t> used;
  for (int64_t i = 0; i < 40 * 8; ++i) {
    const PlannedSequence sequence = (*plan)->Sequence(i);
    if (sequence.domain != 2) continue;
    for (const Piece& piece : sequence.pieces) used[piece.document] += piece.length;
  }
  for (const auto& [document, tokens] : used) {
    EXPECT_LE(tokens, (*(*plan)->domains()[2].data->lengths)[document]);
  }
}

TEST(StagePlanTest, PlansAreDeterministicFunctionsOfDataStageAndSeed) {
  const v1::StageSpec stage = Stage(64, 8, 20, kMixture);
  auto a = StagePlan::Build(stage, 11, Mixed());
  auto b = StagePlan::Build(stage, 11, Mixed());
  auto other_seed = StagePlan::Build(stage, 12, Mixed());
  auto other_data = StagePlan::Build(
      stage, 11,
      MakeData({{"books", {6400}}, {"code", {6400}}, {"web", std::vector<int64_t>(900, 9)}}, "f2"));
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(other_seed);
  ASSERT_OK(other_data);
  EXPECT_EQ((*a)->id(), (*b)->id());
  EXPECT_EQ((*a)->id().size(), 32u);
  EXPECT_NE((*a)->id(), (*other_seed)->id());
  EXPECT_NE((*a)->id(), (*other_data)->id());
  bool differs = false;
  for (int64_t i = 0; i < 20 * 8; ++i) {
    const PlannedSequence x = (*a)->Sequence(i), y = (*b)->Sequence(i);
    EXPECT_EQ(x.domain, y.domain);
    EXPECT_EQ(x.pieces, y.pieces);
    differs |= !(x.pieces == (*other_seed)->Sequence(i).pieces);
  }
  EXPECT_TRUE(differs) << "another seed shuffles differently";
}

TEST(StagePlanTest, ADomainThatWouldRepeatIsRefusedUnlessRepetitionIsAllowed) {
  // books has 5 chunks of 64; the stage needs 0.5 * 4 * 10 = 20 of them.
  auto data = MakeData({{"books", {128, 192, 10}}, {"web", std::vector<int64_t>(2000, 50)}});
  const std::vector<Component> mixture = {{"books", 0.5, v1::PACKING_LONG},
                                          {"web", 0.5, v1::PACKING_SHORT}};
  auto refused = StagePlan::Build(Stage(64, 4, 10, mixture), 1, data);
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "stage.mixture[0] (domain books): the stage needs 20 sequences of 64 "
                       "tokens from it, one epoch holds 5: short by 15 sequences (960 tokens); set "
                       "stage.allow_repetition or lower its proportion"));

  auto repeated = StagePlan::Build(Stage(64, 4, 10, mixture, true), 1, data);
  ASSERT_OK(repeated);
  EXPECT_DOUBLE_EQ((*repeated)->domains()[0].epochs, 4.0);
  EXPECT_LT((*repeated)->domains()[1].epochs, 1.0);
  // Each epoch uses every chunk once, and a new epoch is shuffled anew.
  std::vector<std::pair<int64_t, int64_t>> order;
  for (int64_t i = 0; i < 40; ++i) {
    const PlannedSequence sequence = (*repeated)->Sequence(i);
    if (sequence.domain == 0)
      order.emplace_back(sequence.pieces[0].document, sequence.pieces[0].offset);
  }
  ASSERT_EQ(order.size(), 20u);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> epochs;
  std::set<std::vector<std::pair<int64_t, int64_t>>> distinct_orders;
  // Within a batch the order is by work (all equal here), so the plan order is the epoch order.
  for (int e = 0; e < 4; ++e) {
    std::vector<std::pair<int64_t, int64_t>> epoch(order.begin() + 5 * e,
                                                   order.begin() + 5 * e + 5);
    distinct_orders.insert(epoch);
    std::sort(epoch.begin(), epoch.end());
    epochs.push_back(epoch);
  }
  for (int e = 1; e < 4; ++e) EXPECT_EQ(epochs[e], epochs[0]);
  EXPECT_GT(distinct_orders.size(), 1u);
}

TEST(StagePlanTest, ADomainWithNothingToPackIsRefusedEvenWithRepetition) {
  auto data = MakeData({{"books", {63, 10}}, {"web", std::vector<int64_t>(100, 50)}});
  auto plan = StagePlan::Build(
      Stage(64, 2, 1, {{"books", 0.5, v1::PACKING_LONG}, {"web", 0.5, v1::PACKING_SHORT}}, true), 1,
      data);
  EXPECT_THAT(plan, StatusIs(absl::StatusCode::kFailedPrecondition,
                             "stage.mixture[0] (domain books): no document has 64 tokens or more "
                             "(long packing takes whole seq_len chunks)"));
}

TEST(StagePlanTest, BadStagesNameTheField) {
  auto data = Mixed();
  auto message = [&](const v1::StageSpec& stage) {
    return StagePlan::Build(stage, 0, data).status().ToString();
  };
  v1::StageSpec stage = Stage(64, 8, 2, kMixture);
  stage.set_seq_len(1);
  EXPECT_EQ(message(stage), "INVALID_ARGUMENT: stage.seq_len: must be at least 2, got 1");
  stage = Stage(64, 8, 2, kMixture);
  stage.set_batch_tokens(100);
  EXPECT_EQ(message(stage),
            "INVALID_ARGUMENT: stage.batch_tokens: must be a positive multiple of stage.seq_len "
            "(64), got 100");
  stage = Stage(64, 8, 2, kMixture);
  stage.set_total_tokens(0);
  EXPECT_EQ(message(stage), "INVALID_ARGUMENT: stage.total_tokens: must be positive, got 0");
  stage = Stage(64, 8, 2, {{"books", 0.5, v1::PACKING_LONG}, {"poems", 0.5, v1::PACKING_SHORT}});
  EXPECT_EQ(message(stage),
            "NOT_FOUND: stage.mixture[1].domain: no domain \"poems\" in the data; it has books, "
            "code, web");
  stage = Stage(64, 8, 2, {{"books", 0.5, v1::PACKING_LONG}, {"books", 0.5, v1::PACKING_SHORT}});
  EXPECT_EQ(message(stage),
            "INVALID_ARGUMENT: stage.mixture[1].domain: \"books\" is already stage.mixture[0]");
  stage =
      Stage(64, 8, 2, {{"books", 0.5, v1::PACKING_LONG}, {"web", 0.5, v1::PACKING_UNSPECIFIED}});
  EXPECT_EQ(message(stage),
            "INVALID_ARGUMENT: stage.mixture[1].packing: must be long, short or sft");
  stage = Stage(64, 8, 2, {{"books", 0.5, v1::PACKING_LONG}, {"web", 0.4, v1::PACKING_SHORT}});
  EXPECT_EQ(message(stage),
            "INVALID_ARGUMENT: stage.mixture: proportions sum to 0.9, not 1 (within 1e-6)");
  stage = Stage(64, 8, 2, {{"books", 1.5, v1::PACKING_LONG}, {"web", -0.5, v1::PACKING_SHORT}});
  EXPECT_EQ(message(stage),
            "INVALID_ARGUMENT: stage.mixture[0].proportion: must be in (0, 1], got 1.5");
  stage = Stage(64, 8, 2, {});
  EXPECT_EQ(message(stage), "INVALID_ARGUMENT: stage.mixture: no domains");
}

}  // namespace
}  // namespace prolong::plan
