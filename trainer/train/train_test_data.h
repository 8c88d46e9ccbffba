// Seeded global batches and a two-step training run for the trainer's tests: the same code
// runs in one process (the reference) and in each rank of a multi-process gang.
#ifndef PROLONG_TRAINER_TRAIN_TRAIN_TEST_DATA_H_
#define PROLONG_TRAINER_TRAIN_TRAIN_TEST_DATA_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datamixer/plan/rank_layout.h"
#include "prolong/v1/datamixer.pb.h"
#include "torch/types.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/llama.h"
#include "trainer/parallel/parallel_plan.h"
#include "trainer/train/lr_schedule.h"
#include "trainer/train/trainer.h"
#include "trainer/train/trainer_options.h"

namespace prolong::train::testing {

constexpr int64_t kSeqLen = 96;
constexpr int64_t kSequences = 4;

// One packed sequence as the datamixer's plan holds it.
struct GlobalSequence {
  std::vector<uint32_t> tokens;
  std::vector<int32_t> cu_seqlens;
  // 1 where the token's target is trained on: never at a piece's last token, and (as in SFT)
  // not at some other tokens either.
  std::vector<uint8_t> loss_mask;
};

// kSequences sequences of kSeqLen tokens, several documents each (some of one token, some
// crossing the zigzag chunk boundaries).
std::vector<GlobalSequence> MakeGlobalBatch(uint64_t seed);

// What the datamixer sends `rank` for this batch (see proto/prolong/v1/datamixer.proto); the
// sequences may have any length.
v1::Batch RankBatch(const std::vector<GlobalSequence>& batch, int64_t step, const plan::Rank& rank);

// The mean cross-entropy over the masked tokens of the whole batch, computed plainly: each
// sequence through model.forward with PackedLayout, full logits, torch's cross_entropy.
double PlainMeanCrossEntropy(model::LlamaForCausalLM& model,
                             const std::vector<GlobalSequence>& batch);

// The (query, key) pairs causal attention attends to in the batch: L (L + 1) / 2 per document
// of L tokens, from the sequences' cu_seqlens.
int64_t CausalAttentionPairs(const std::vector<GlobalSequence>& batch);

// Parallelize(model, groups, options.parallel, the CPU), then Trainer::Create.
absl::StatusOr<std::unique_ptr<Trainer>> CreateTrainer(
    std::shared_ptr<model::LlamaForCausalLM> model, comm::ProcessGroups* groups,
    const TrainerOptions& options, const LrSchedule& schedule);

// Bytes this rank holds in parameters, their gradients and AdamW moments (shards, with sharded
// weights and between steps).
int64_t HeldBytes(const Trainer& trainer);

// No checkpointing, float32, gradient buckets of 64 KB (several per step).
parallel::ParallelPlan TestPlan();

struct RunOptions {
  int64_t sequences_per_micro_batch = 1;
  parallel::ParallelPlan plan = TestPlan();
  // After the first step, save a checkpoint (model, full AdamW state, progress) into this
  // directory (world rank 0 writes it) and go on.
  std::string save_after_first_step;
  // Load the checkpoint of the first step from this directory and train only the second.
  std::string resume_from;
};

struct RunResult {
  // named_parameters() order, after the last step; with sharded weights, this rank's shards.
  std::vector<torch::Tensor> parameters;
  // The first step's, reduced and clipped (if trained); shards with sharded weights.
  std::vector<torch::Tensor> gradients;
  std::vector<double> losses;  // per step trained
  std::vector<double> grad_norms;
  std::vector<double> lrs;
  std::vector<int64_t> attention_pairs;  // global, per step
  // Parameters with AdamW state in this rank's optimizer after the last step: all of them, or
  // this rank's share with shard_optimizer_state.
  int64_t own_optimizer_states = 0;
  // Bytes this rank holds after the last step in parameters, gradients and AdamW moments.
  int64_t held_bytes = 0;
  // With sharded weights, the most bytes of whole weights held at once.
  int64_t peak_gathered_bytes = 0;
  // The full AdamW state after the last step as a checkpoint saves it (ExtractAdamWState), by
  // tensor name; on world rank 0 (or one process) only.
  std::map<std::string, torch::Tensor> optimizer_state;
};

// Two optimizer steps of a seeded tiny Llama on batches MakeGlobalBatch(seed), (seed + 1):
// `groups` null for one process, else this rank's communicators (`rank` says its place).
absl::StatusOr<RunResult> TrainTwoSteps(uint64_t seed, comm::ProcessGroups* groups,
                                        const plan::Rank& rank, const RunOptions& options);

}  // namespace prolong::train::testing

#endif  // PROLONG_TRAINER_TRAIN_TRAIN_TEST_DATA_H_
