#include "scheduler/stage_job.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "google/protobuf/text_format.h"
#include "scheduler/run_spec_check.h"
#include "trainer/model/llama_config.h"

namespace prolong::scheduler {
namespace {

model::LlamaConfig FromSpec(const v1::LlamaConfig& spec) {
  model::LlamaConfig config;
  config.vocab_size = spec.vocab_size();
  config.hidden_size = spec.hidden_size();
  config.intermediate_size = spec.intermediate_size();
  config.num_hidden_layers = spec.num_hidden_layers();
  config.num_attention_heads = spec.num_attention_heads();
  config.num_key_value_heads =
      spec.num_key_value_heads() > 0 ? spec.num_key_value_heads() : spec.num_attention_heads();
  config.head_dim = spec.hidden_size() / spec.num_attention_heads();
  if (spec.rms_norm_eps() > 0) config.rms_norm_eps = spec.rms_norm_eps();
  if (spec.rope_theta() > 0) config.rope_theta = spec.rope_theta();
  if (spec.max_position_embeddings() > 0) {
    config.max_position_embeddings = spec.max_position_embeddings();
  }
  config.tie_word_embeddings = spec.tie_word_embeddings();
  config.bos_token_id = spec.bos_token_id();
  if (spec.eos_token_ids_size() > 0) {
    config.eos_token_ids.assign(spec.eos_token_ids().begin(), spec.eos_token_ids().end());
  }
  return config;
}

parallel::Precision PrecisionOf(v1::Precision precision) {
  switch (precision) {
    case v1::PRECISION_FP32:
      return parallel::Precision::kFp32;
    case v1::PRECISION_BF16:
      return parallel::Precision::kBf16;
    default:
      return parallel::Precision::kAuto;
  }
}

parallel::CpScheme CpSchemeOf(v1::ContextParallelScheme scheme) {
  switch (scheme) {
    case v1::CONTEXT_PARALLEL_SCHEME_RING:
      return parallel::CpScheme::kRing;
    case v1::CONTEXT_PARALLEL_SCHEME_ULYSSES:
      return parallel::CpScheme::kUlysses;
    default:
      return parallel::CpScheme::kAllGather;
  }
}

parallel::ActivationCheckpointing CheckpointingOf(v1::ActivationCheckpointing checkpointing) {
  switch (checkpointing) {
    case v1::ACTIVATION_CHECKPOINTING_OFF:
      return parallel::ActivationCheckpointing::kOff;
    case v1::ACTIVATION_CHECKPOINTING_PER_LAYER:
      return parallel::ActivationCheckpointing::kFull;
    default:
      return parallel::ActivationCheckpointing::kAuto;
  }
}

std::string DeviceOf(v1::Device device) {
  switch (device) {
    case v1::DEVICE_CPU:
      return "cpu";
    case v1::DEVICE_CUDA:
      return "cuda";
    default:
      return "auto";
  }
}

}  // namespace

v1::StageSpec TrainerStage(const v1::RunSpec& spec, int stage_index) {
  v1::StageSpec stage = spec.stages(stage_index);
  stage.clear_layout();
  return stage;
}

std::string StageCheckpointDir(const v1::RunSpec& spec, int stage_index) {
  return absl::StrCat(spec.checkpoint().directory(), "/", spec.stages(stage_index).name());
}

absl::StatusOr<worker::WorkerOptions> PrepareStageJob(const v1::RunSpec& spec, int stage_index,
                                                      const StageJobOptions& options) {
  std::error_code error;
  std::filesystem::create_directories(options.work_dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("creating ", options.work_dir, ": ", error.message()));
  }
  const v1::StageSpec stage = TrainerStage(spec, stage_index);
  worker::WorkerOptions job;
  job.stage_path = absl::StrCat(options.work_dir, "/stage-", stage.name(), ".textproto");
  std::string stage_text;
  google::protobuf::TextFormat::PrintToString(stage, &stage_text);
  RETURN_IF_ERROR(WriteFileAtomically(job.stage_path, stage_text));

  if (stage_index > 0) {
    job.init_checkpoint = StageCheckpointDir(spec, stage_index - 1);
  } else if (spec.model().has_config()) {
    job.model_config_path = absl::StrCat(options.work_dir, "/config.json");
    RETURN_IF_ERROR(
        model::WriteLlamaConfig(job.model_config_path, FromSpec(spec.model().config())));
  } else {
    job.init_checkpoint = spec.model().init_checkpoint();
  }
  job.checkpoint_dir = StageCheckpointDir(spec, stage_index);
  job.checkpoint_every = spec.checkpoint().every_steps();
  job.keep_last = spec.checkpoint().keep_last();
  job.datamixer_address = spec.data().datamixer_address().empty() ? options.datamixer_address
                                                                  : spec.data().datamixer_address();
  job.seed = spec.seed();
  job.run_name = spec.name();
  job.deterministic = spec.deterministic();
  if (!job.deterministic) job.threads = options.threads_per_worker;
  job.micro_batch_sequences = StageLayoutOf(spec, stage_index).micro_batch_sequences;
  job.device = DeviceOf(spec.resources().device());
  if (spec.fault().has_rendezvous_timeout()) {
    job.rendezvous_timeout_seconds =
        static_cast<double>(spec.fault().rendezvous_timeout().seconds()) +
        spec.fault().rendezvous_timeout().nanos() * 1e-9;
  }

  train::TrainerOptions& trainer = job.trainer;
  const v1::OptimizerSpec& optimizer = spec.optimizer();
  if (optimizer.beta1() > 0) trainer.adamw.beta1 = optimizer.beta1();
  if (optimizer.beta2() > 0) trainer.adamw.beta2 = optimizer.beta2();
  if (optimizer.epsilon() > 0) trainer.adamw.epsilon = optimizer.epsilon();
  if (optimizer.weight_decay() > 0) trainer.adamw.weight_decay = optimizer.weight_decay();
  if (optimizer.grad_clip_norm() > 0) trainer.grad_clip_norm = optimizer.grad_clip_norm();
  trainer.skip_nonfinite = optimizer.non_finite_loss() == v1::NON_FINITE_LOSS_POLICY_SKIP_BATCH;
  parallel::ParallelPlan& plan = trainer.parallel;
  plan.precision = PrecisionOf(spec.model().precision());
  plan.activation_checkpointing = CheckpointingOf(spec.model().activation_checkpointing());
  plan.cp_scheme = CpSchemeOf(spec.resources().context_parallel_scheme());
  plan.shard_optimizer_state = optimizer.shard_optimizer_state();
  plan.shard_weights = spec.resources().shard_weights();
  plan.shard_group_size = spec.resources().shard_group_size();
  return job;
}

}  // namespace prolong::scheduler
