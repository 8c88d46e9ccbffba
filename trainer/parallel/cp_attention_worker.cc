// One rank of context_parallel_attention_test: joins the gang, runs context-parallel attention
// (--cp-scheme: all-gather or ring; --attention: blockwise, or varlen for the varlen-kernel
// machinery with the blockwise kernel) on its zigzag chunks of its replica's sequence, twice as
// two layers would (the second on 2q, -k, v/2), backpropagates
// (out * weights + out2 * cos(weights)).sum() and saves {out, dq, dk, dv} for its tokens with
// torch::save.

#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "torch/serialize.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/attention/varlen_attention.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/context_parallel_attention.h"
#include "trainer/parallel/cp_scheme.h"
#include "trainer/parallel/cp_test_data.h"

int main(int argc, char** argv) {
  prolong::comm::RendezvousOptions options;
  std::string out;
  double timeout_seconds = 60;
  uint64_t seed = 1;
  std::string scheme_name = "all-gather";
  std::string attention_name = "blockwise";
  CLI::App app("One rank of a context-parallel attention test.");
  prolong::ConfigureCli(app);
  app.add_option("--store", options.store_address)->required();
  app.add_option("--rank", options.rank)->required();
  app.add_option("--world", options.world_size)->required();
  app.add_option("--dp", options.dp_size)->required();
  app.add_option("--cp", options.cp_size)->required();
  app.add_option("--seed", seed);
  app.add_option("--timeout-seconds", timeout_seconds);
  app.add_option("--cp-scheme", scheme_name);
  app.add_option("--attention", attention_name)->check(CLI::IsMember({"blockwise", "varlen"}));
  app.add_option("--out", out)->required();
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;
  options.timeout = absl::Seconds(timeout_seconds);
  const absl::StatusOr<prolong::parallel::CpScheme> scheme =
      prolong::parallel::ParseCpScheme(scheme_name);
  if (!scheme.ok()) {
    std::cerr << "--cp-scheme: " << scheme.status().message() << std::endl;
    return 2;
  }

  absl::StatusOr<prolong::comm::ProcessGroups> groups = prolong::comm::JoinGloo(options);
  if (!groups.ok()) {
    std::cerr << "rank " << options.rank << ": " << groups.status().message() << std::endl;
    return 1;
  }
  namespace testing = prolong::parallel::testing;
  const testing::PackedSequence sequence = testing::MakePackedSequence(seed + groups->dp_rank);
  const torch::Tensor index =
      testing::ZigzagIndices(testing::kTokens, groups->cp_rank, options.cp_size);
  torch::Tensor q = sequence.q.index_select(0, index).requires_grad_();
  torch::Tensor k = sequence.k.index_select(0, index).requires_grad_();
  torch::Tensor v = sequence.v.index_select(0, index).requires_grad_();
  const prolong::attention::TokenLayout layout{sequence.layout.document.index_select(0, index),
                                               sequence.layout.position.index_select(0, index)};
  const double scale = 1.0 / std::sqrt(static_cast<double>(testing::kHeadDim));
  const std::shared_ptr<const prolong::attention::PartialAttention> varlen =
      prolong::attention::VarlenPartialAttention(prolong::attention::BlockwiseVarlenKernel());
  prolong::parallel::ContextParallelAttention attend(
      groups->cp.get(), *scheme,
      attention_name == "varlen" ? *varlen : prolong::attention::BlockwisePartialAttention());
  const torch::Tensor attended = attend(q, k, v, layout, scale);
  // A second layer with the same layout attends with the layouts gathered by the first.
  const torch::Tensor again = attend(2 * q, -k, 0.5 * v, layout, scale);
  const torch::Tensor weights = sequence.weights.index_select(0, index);
  (attended * weights + again * weights.cos()).sum().backward();
  torch::save(std::vector<torch::Tensor>{attended.detach(), q.grad(), k.grad(), v.grad()}, out);
  groups->world->Barrier();  // Nobody leaves while a peer may still need it.
  return 0;
}
