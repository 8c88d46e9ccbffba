// One rank of parallel_trainer_test: joins the gang, runs TrainTwoSteps on its slice of the
// seeded batches and saves the parameters, the first step's gradients (when it trained that
// step), then {losses, grad norms, lrs, parameters with optimizer state here, attention pairs,
// bytes held in parameters, gradients and moments, most whole weights gathered at once}, with
// torch::save;
// rank 0 also saves the full optimizer state's tensors in name order to --out-optimizer.

#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "torch/serialize.h"
#include "trainer/comm/communicator.h"
#include "trainer/parallel/cp_scheme.h"
#include "trainer/parallel/parallel_plan.h"
#include "trainer/train/train_test_data.h"

int main(int argc, char** argv) {
  prolong::comm::RendezvousOptions options;
  std::string out;
  uint64_t seed = 1;
  prolong::train::testing::RunOptions run;
  std::string cp_scheme = "all-gather";
  CLI::App app("One rank of a parallel training test.");
  prolong::ConfigureCli(app);
  app.add_option("--store", options.store_address)->required();
  app.add_option("--rank", options.rank)->required();
  app.add_option("--world", options.world_size)->required();
  app.add_option("--dp", options.dp_size)->required();
  app.add_option("--cp", options.cp_size)->required();
  app.add_option("--seed", seed);
  app.add_option("--micro-batch-sequences", run.sequences_per_micro_batch);
  bool checkpointing = false, keep_attention = false;
  app.add_flag("--checkpointing", checkpointing);
  app.add_flag("--keep-attention", keep_attention);
  app.add_option("--cp-scheme", cp_scheme);
  std::string precision = "fp32";
  app.add_option("--precision", precision);
  bool no_overlap = false;
  app.add_flag("--no-overlap", no_overlap);
  app.add_flag("--shard-optimizer-state", run.plan.shard_optimizer_state);
  app.add_flag("--shard-weights", run.plan.shard_weights);
  app.add_option("--shard-group-size", run.plan.shard_group_size);
  app.add_option("--save-after-first-step", run.save_after_first_step);
  app.add_option("--resume-from", run.resume_from);
  app.add_option("--out", out)->required();
  std::string out_optimizer;
  app.add_option("--out-optimizer", out_optimizer);
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;
  absl::StatusOr<prolong::parallel::CpScheme> scheme = prolong::parallel::ParseCpScheme(cp_scheme);
  if (!scheme.ok()) {
    std::cerr << "--cp-scheme: " << scheme.status().message() << std::endl;
    return 2;
  }
  run.plan.cp_scheme = *scheme;
  absl::StatusOr<prolong::parallel::Precision> parsed_precision =
      prolong::parallel::ParsePrecision(precision);
  if (!parsed_precision.ok()) {
    std::cerr << "--precision: " << parsed_precision.status().message() << std::endl;
    return 2;
  }
  run.plan.precision = *parsed_precision;
  run.plan.overlap_grad_reduce = !no_overlap;
  using prolong::parallel::ActivationCheckpointing;
  if (checkpointing) {
    run.plan.activation_checkpointing =
        keep_attention ? ActivationCheckpointing::kSelective : ActivationCheckpointing::kFull;
  }

  if (run.plan.shard_weights) options.shard_size = run.plan.shard_group_size;
  absl::StatusOr<prolong::comm::ProcessGroups> groups = prolong::comm::JoinGloo(options);
  if (!groups.ok()) {
    std::cerr << "rank " << options.rank << ": " << groups.status().message() << std::endl;
    return 1;
  }
  const prolong::plan::Rank rank{groups->dp_rank, options.dp_size, groups->cp_rank,
                                 options.cp_size};
  absl::StatusOr<prolong::train::testing::RunResult> result =
      prolong::train::testing::TrainTwoSteps(seed, &*groups, rank, run);
  if (!result.ok()) {
    std::cerr << "rank " << options.rank << ": " << result.status() << std::endl;
    return 1;
  }
  std::vector<double> metrics = result->losses;
  metrics.insert(metrics.end(), result->grad_norms.begin(), result->grad_norms.end());
  metrics.insert(metrics.end(), result->lrs.begin(), result->lrs.end());
  metrics.push_back(static_cast<double>(result->own_optimizer_states));
  for (int64_t pairs : result->attention_pairs) metrics.push_back(static_cast<double>(pairs));
  metrics.push_back(static_cast<double>(result->held_bytes));
  metrics.push_back(static_cast<double>(result->peak_gathered_bytes));
  std::vector<torch::Tensor> saved = result->parameters;
  saved.insert(saved.end(), result->gradients.begin(), result->gradients.end());
  saved.push_back(torch::tensor(metrics, torch::kFloat64));
  torch::save(saved, out);
  if (!out_optimizer.empty() && groups->world->rank() == 0) {
    std::vector<torch::Tensor> state;
    for (const auto& [name, tensor] : result->optimizer_state) state.push_back(tensor);
    torch::save(state, out_optimizer);
  }
  groups->world->Barrier();  // Nobody leaves while a peer may still need it.
  return 0;
}
