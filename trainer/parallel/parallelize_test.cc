#include "trainer/parallel/parallelize.h"

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/comm/test_communicators.h"
#include "trainer/model/model_test_util.h"

namespace prolong::parallel {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using torch::Tensor;

std::shared_ptr<model::LlamaForCausalLM> TinyModel() {
  return *model::CreateLlama(model::testing::TinyLlamaConfig(), 5);
}

ParallelPlan Plan(ActivationCheckpointing checkpointing = ActivationCheckpointing::kOff) {
  ParallelPlan plan;
  plan.activation_checkpointing = checkpointing;
  plan.precision = Precision::kFp32;
  return plan;
}

// Groups of fake communicators: a world of two ranks, with a cp group of `cp` (1 or 2).
comm::ProcessGroups FakeGroups(int cp) {
  comm::ProcessGroups groups;
  groups.world = std::make_unique<comm::testing::DoublingCommunicator>();
  if (cp == 2) {
    groups.dp = std::make_unique<comm::testing::OneRankCommunicator>();
    groups.cp = std::make_unique<comm::testing::DoublingCommunicator>();
  } else {
    groups.dp = std::make_unique<comm::testing::DoublingCommunicator>();
    groups.cp = std::make_unique<comm::testing::OneRankCommunicator>();
  }
  return groups;
}

size_t CheckpointNodes(const Tensor& output) {
  size_t count = 0;
  std::vector<torch::autograd::Node*> stack = {output.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    count += node->name().find("CheckpointFunction") != std::string::npos;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return count;
}

TEST(ParallelizeTest, OneProcessOnTheCpuKeepsTheModelsArithmetic) {
  auto plain = TinyModel();
  const attention::TokenLayout layout = *model::PackedLayout({0, 5, 6, 20});
  const Tensor ids = torch::arange(20, torch::kInt64) * 3 % 64;
  const Tensor expected = plain->forward(ids, layout);

  for (const ActivationCheckpointing checkpointing :
       {ActivationCheckpointing::kOff, ActivationCheckpointing::kFull,
        ActivationCheckpointing::kSelective}) {
    SCOPED_TRACE(ActivationCheckpointingName(checkpointing));
    ASSERT_OK_AND_ASSIGN(ParallelModel parallel,
                         Parallelize(TinyModel(), nullptr, Plan(checkpointing), c10::kCPU));
    EXPECT_EQ(parallel.attention, "blockwise");
    EXPECT_FALSE(parallel.bf16_autocast);
    EXPECT_EQ(parallel.groups, nullptr);
    ASSERT_NE(parallel.data_parallel, nullptr);
    const Tensor hidden = parallel.model->forward(ids, layout);
    EXPECT_TRUE(torch::equal(hidden, expected));
    // Step 3 wrapped every layer, or none.
    EXPECT_EQ(CheckpointNodes(hidden), checkpointing == ActivationCheckpointing::kOff ? 0u : 2u);
  }
}

TEST(ParallelizeTest, AContextParallelGroupGetsContextParallelAttention) {
  comm::ProcessGroups groups = FakeGroups(/*cp=*/2);
  ParallelPlan plan = Plan(ActivationCheckpointing::kFull);
  plan.cp_scheme = CpScheme::kRing;
  plan.precision = Precision::kBf16;
  ASSERT_OK_AND_ASSIGN(ParallelModel parallel, Parallelize(TinyModel(), &groups, plan, c10::kCPU));
  EXPECT_EQ(parallel.attention, "context-parallel ring over 2 ranks (local blockwise)");
  EXPECT_TRUE(parallel.bf16_autocast);
  EXPECT_EQ(parallel.groups, &groups);

  // A data-parallel group alone leaves attention local.
  comm::ProcessGroups data_only = FakeGroups(/*cp=*/1);
  ASSERT_OK_AND_ASSIGN(ParallelModel replicated,
                       Parallelize(TinyModel(), &data_only, Plan(), c10::kCPU));
  EXPECT_EQ(replicated.attention, "blockwise");
}

TEST(ParallelizeTest, UnresolvedChoicesAndBadGroupsAreRefused) {
  ParallelPlan plan = Plan();
  plan.activation_checkpointing = ActivationCheckpointing::kAuto;
  EXPECT_THAT(Parallelize(TinyModel(), nullptr, plan, c10::kCPU),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("plan.activation_checkpointing is auto")));
  plan = Plan();
  plan.precision = Precision::kAuto;
  EXPECT_THAT(Parallelize(TinyModel(), nullptr, plan, c10::kCPU),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("plan.precision is auto")));
  plan = Plan();
  plan.bucket_bytes = 0;
  EXPECT_THAT(Parallelize(TinyModel(), nullptr, plan, c10::kCPU),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("plan.bucket_bytes")));
  EXPECT_THAT(Parallelize(nullptr, nullptr, Plan(), c10::kCPU),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model is null")));
  comm::ProcessGroups partial = FakeGroups(1);
  partial.cp.reset();
  EXPECT_THAT(
      Parallelize(TinyModel(), &partial, Plan(), c10::kCPU),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("groups must hold world, dp and cp")));
}

}  // namespace
}  // namespace prolong::parallel
