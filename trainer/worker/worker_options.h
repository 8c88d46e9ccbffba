// What one trainer worker is told: its place in the gang and the training job's settings. The
// job's flags are shared by the worker binary and its launchers (prolongctl train), which
// check them once and forward them to every rank. The trainer's own settings, the parallel
// plan included, are flags straight into train::TrainerOptions. No LibTorch here.
#ifndef PROLONG_TRAINER_WORKER_WORKER_OPTIONS_H_
#define PROLONG_TRAINER_WORKER_WORKER_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/security.h"
#include "prolong/v1/run_spec.pb.h"
#include "trainer/model/llama_config.h"
#include "trainer/train/lr_schedule.h"
#include "trainer/train/trainer_options.h"

namespace prolong::worker {

struct WorkerOptions {
  // The rank's place (AddRankFlags). rank = dp_rank * cp_size + cp_rank.
  int rank = 0;
  int world_size = 1;
  int dp_size = 1;
  int cp_size = 1;
  // host:port of the gang's TCP store; may be empty when world_size is 1.
  std::string rendezvous_address;
  // Rank 0 hosts the store on rendezvous_address (port 0: any) and reports where in its ready
  // line; the launcher then starts the other ranks with that address.
  bool host_rendezvous = false;

  // The job (AddJobFlags).
  double rendezvous_timeout_seconds = 300;  // FaultPolicy's default
  // A collective's wait for the slowest rank: long enough for rank 0's checkpoint saves.
  double collective_timeout_seconds = 1800;
  std::string datamixer_address = "127.0.0.1:7410";
  double datamixer_timeout_seconds = 60;
  std::string stage_path;
  // Seeds the model's initialization and the stage's data plan.
  uint64_t seed = 0;
  // Exactly one: a Hugging Face config.json for a fresh model, or where to start from (a model
  // directory, a training checkpoint, or a checkpoint directory: see JobFiles).
  std::string model_config_path;
  std::string init_checkpoint;
  std::string checkpoint_dir;
  // A checkpoint after every N optimizer steps (0: only at the end) and at the end.
  int64_t checkpoint_every = 0;
  int keep_last = 0;  // 0: keep every checkpoint
  int64_t micro_batch_sequences = 1;
  // Bitwise reproducible, across restarts too: one intra-op thread.
  bool deterministic = false;
  int threads = 0;              // intra-op threads; 0: LibTorch's default
  std::string device = "auto";  // auto, cpu, cuda (device.h)
  int read_ahead_batches = 2;
  // Peak dense TFLOP/s of one rank's device, for MFU in the step log and on /metrics; 0: a
  // known GPU's bf16 peak when training in bf16 (trainer/device_info.h), else MFU not shown.
  double peak_tflops = 0;
  std::string run_name;
  // TLS of the worker's calls to the datamixer and the scheduler (--client-tls-ca,
  // --client-tls-cert, --client-tls-key; common/security.h). No token: those calls need none.
  ClientSecurityFiles client_tls;
  // Fault injection for tests: turns the model's weights non-finite before this step (0-based).
  int64_t inject_nonfinite_at_step = -1;
  // The trainer's settings (--activation-checkpointing, --precision, --cp-scheme,
  // --gpu-attention, --grad-clip-norm, --weight-decay, --shard-optimizer-state,
  // --overlap-grad-reduce); kAuto choices are made per stage and device (parallel::ResolveAuto).
  train::TrainerOptions trainer;
};

// --rank, --world, --dp, --cp, --rendezvous, --host-rendezvous: what a launcher sets for each
// rank.
void AddRankFlags(CLI::App& app, WorkerOptions& options);
// Every other flag of the worker: the job, the same on every rank.
void AddJobFlags(CLI::App& app, WorkerOptions& options);
// The job flags with their values, as a command line for AddJobFlags (defaults included).
std::vector<std::string> JobFlagArgs(const WorkerOptions& options);

// What the job's files say: the stage, the model's shape and where its weights come from.
struct JobFiles {
  v1::StageSpec stage;
  model::LlamaConfig model_config;  // from --model-config, or the initial model's config.json
  // With --init-checkpoint, the Hugging Face model directory to load. When --init-checkpoint
  // names a training checkpoint (an earlier stage's step-N, or a checkpoint directory, whose
  // newest checkpoint that has all its files is taken), that checkpoint: the new stage starts
  // from its AdamW state and step count, restarting the schedule (ProLong's stage 2), unless
  // the stage sets reset_optimizer_state.
  std::string init_model_dir;
  std::string init_training_checkpoint;
  // The PEM files of --client-tls-*.
  ClientSecurity client_security;
};

// Checks the job's settings and reads its files, before anything starts. INVALID_ARGUMENT or
// NOT_FOUND naming the flag (and the file's problem) in one line. Also, from world_size and
// cp_size, whether the cp scheme can split the model's heads and the weights' shard groups the
// world.
absl::StatusOr<JobFiles> CheckJob(const WorkerOptions& options);
// Checks the rank's place: ranges, dp x cp = world, only rank 0 hosting the store.
absl::Status CheckRank(const WorkerOptions& options);

// The stage's learning-rate schedule over `steps` optimizer steps (the plan's). An unset shape
// means cosine (ProLong's). INVALID_ARGUMENT naming stage.schedule's field.
absl::StatusOr<train::LrSchedule> StageSchedule(const v1::StageSpec& stage, int64_t steps);

}  // namespace prolong::worker

#endif  // PROLONG_TRAINER_WORKER_WORKER_OPTIONS_H_
