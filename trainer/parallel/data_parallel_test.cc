#include "trainer/parallel/data_parallel.h"

#include <string>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "torch/torch.h"
#include "trainer/comm/test_communicators.h"
#include "trainer/parallel/gradient_reduction.h"
#include "trainer/parallel/sharded_optimizer.h"

namespace prolong::parallel {
namespace {

using comm::testing::DoublingCommunicator;
using torch::Tensor;

TEST(DataParallelTest, GradientsAreReducedInBuckets) {
  std::vector<Tensor> parameters = {torch::zeros({2, 5}), torch::zeros({10}), torch::zeros({100}),
                                    torch::zeros({5}), torch::zeros({3}, torch::kFloat64)};
  for (size_t i = 0; i < parameters.size(); ++i) {
    parameters[i].requires_grad_();
    if (i != 2) parameters[i].mutable_grad() = torch::full_like(parameters[i], double(i + 1));
  }
  DoublingCommunicator comm;
  AllReduceGradients(parameters, comm, /*bucket_bytes=*/80);
  // From the last parameter: float64 is a bucket of its own, the float32 after it starts one;
  // 400 bytes are a bucket alone; 40 + 40 bytes fill a bucket.
  EXPECT_EQ(comm.sizes, (std::vector<int64_t>{3, 5, 100, 20}));
  for (size_t i = 0; i < parameters.size(); ++i) {
    const double expected = i == 2 ? 0 : 2.0 * (i + 1);
    EXPECT_TRUE(torch::all(parameters[i].grad() == expected).item<bool>()) << i;
    EXPECT_EQ(parameters[i].grad().sizes(), parameters[i].sizes());
  }
}

// Four parameters in two buckets of two, from the last: {c, b} and {u, a}; u is used only in
// the first of two micro-batches.
TEST(DataParallelTest, OverlappedReductionStartsFinishedBucketsDuringBackward) {
  auto make = [] {
    std::vector<Tensor> parameters;
    for (int i = 0; i < 4; ++i) {
      parameters.push_back(torch::linspace(0.5 + i, 1.5 + i, 4).requires_grad_());
    }
    return parameters;
  };
  const Tensor x = torch::tensor({0.3f, -1.7f, 2.1f, 0.9f});
  auto backward = [&](const std::vector<Tensor>& p, bool first) {
    const Tensor loss = (p[0] * x).sum() + (p[2] * p[3] * x).sum().pow(2);
    (first ? loss + (p[1] * x).exp().sum() : loss).backward();
  };
  std::vector<Tensor> overlapped = make();
  DoublingCommunicator comm;
  OverlappedGradientReduction reduction(overlapped, &comm, /*bucket_bytes=*/32);
  backward(overlapped, true);
  EXPECT_TRUE(comm.sizes.empty());  // not armed
  reduction.Arm();
  backward(overlapped, false);
  // {c, b} left during backward; {u, a} waits for u, which the last pass leaves unused.
  EXPECT_EQ(comm.sizes, (std::vector<int64_t>{8}));
  reduction.Finish();
  EXPECT_EQ(comm.sizes, (std::vector<int64_t>{8, 8}));

  std::vector<Tensor> blocking = make();
  backward(blocking, true);
  backward(blocking, false);
  DoublingCommunicator blocking_comm;
  AllReduceGradients(blocking, blocking_comm, /*bucket_bytes=*/32);
  for (size_t i = 0; i < blocking.size(); ++i) {
    EXPECT_TRUE(torch::equal(overlapped[i].grad(), blocking[i].grad())) << i;
  }

  // The hooks are gone: another backward pass starts nothing, and a step without Arm reduces
  // everything in Finish.
  backward(overlapped, false);
  EXPECT_EQ(comm.sizes.size(), 2u);
  reduction.Finish();
  EXPECT_EQ(comm.sizes, (std::vector<int64_t>{8, 8, 8, 8}));
}

TEST(DataParallelTest, OptimizerShardsAreWholeParametersBalancedBySize) {
  std::vector<Tensor> parameters;
  for (int64_t n : {10, 100, 30, 30, 50}) parameters.push_back(torch::zeros({n}));
  // 100 to rank 0; 50, 30 and 30 to rank 1 (50, 80, 110); 10 to rank 0 (110).
  EXPECT_EQ(AssignParameterOwners(parameters, 2), (std::vector<int>{0, 0, 1, 1, 1}));
  EXPECT_EQ(AssignParameterOwners(parameters, 1), (std::vector<int>(5, 0)));
  // More ranks than parameters: some own nothing.
  EXPECT_EQ(AssignParameterOwners(parameters, 7), (std::vector<int>{4, 0, 2, 3, 1}));
}

// One process: nothing to sum, and the optimizer steps every parameter.
TEST(DataParallelTest, OneProcessStepsEverything) {
  Tensor a = torch::ones({3}, torch::requires_grad()), b = torch::ones({2}, torch::requires_grad());
  ParallelPlan plan;
  plan.shard_optimizer_state = true;  // no group to shard over
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataParallel> data_parallel,
                       DataParallel::Create({{"a", a}, {"b", b}}, nullptr, plan));
  a.mutable_grad() = torch::full({3}, 2.0);
  b.mutable_grad() = torch::full({2}, -1.0);
  data_parallel->BeforeLastBackward();
  data_parallel->ReduceGradients();
  EXPECT_TRUE(torch::equal(a.grad(), torch::full({3}, 2.0)));
  torch::optim::AdamW optimizer({a, b}, torch::optim::AdamWOptions(0.1).weight_decay(0));
  data_parallel->Step(optimizer);
  EXPECT_EQ(optimizer.state().size(), 2u);
  EXPECT_TRUE(data_parallel->KeepsOptimizerStateOf("a"));
  EXPECT_TRUE(data_parallel->KeepsOptimizerStateOf("b"));
  EXPECT_LT(a[0].item<double>(), 1);
  EXPECT_GT(b[0].item<double>(), 1);
}

// Two ranks of ZeRO-1: this rank (0) owns the largest parameter and steps only it; the other's
// state is another rank's, named so that a checkpoint load skips it.
TEST(DataParallelTest, ShardedStepKeepsStateForOwnParametersOnly) {
  Tensor big = torch::ones({100}, torch::requires_grad());
  Tensor small = torch::ones({10}, torch::requires_grad());
  ParallelPlan plan;
  plan.shard_optimizer_state = true;
  plan.overlap_grad_reduce = false;
  DoublingCommunicator world;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DataParallel> data_parallel,
                       DataParallel::Create({{"big", big}, {"small", small}}, &world, plan));
  EXPECT_TRUE(data_parallel->KeepsOptimizerStateOf("big"));
  EXPECT_FALSE(data_parallel->KeepsOptimizerStateOf("small"));
  big.mutable_grad() = torch::ones({100});
  small.mutable_grad() = torch::ones({10});
  data_parallel->ReduceGradients();
  EXPECT_TRUE(torch::equal(big.grad(), torch::full({100}, 2.0)));
  torch::optim::AdamW optimizer({big, small}, torch::optim::AdamWOptions(0.1).weight_decay(0));
  data_parallel->Step(optimizer);
  EXPECT_EQ(optimizer.state().size(), 1u);

  // A second dtype cannot be moved through ZeRO-1's flat buffers.
  Tensor wide = torch::ones({4}, torch::dtype(torch::kFloat64).requires_grad(true));
  EXPECT_THAT(DataParallel::Create({{"big", big}, {"wide", wide}}, &world, plan),
              prolong::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("one dtype on one device")));
}

}  // namespace
}  // namespace prolong::parallel
