#include "trainer/worker/worker_options.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/proto_file.h"
#include "common/status_macros.h"
#include "trainer/attention/fused_kernel.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/model_source.h"
#include "trainer/parallel/cp_scheme.h"
#include "trainer/parallel/parallel_plan.h"

namespace prolong::worker {
namespace {

// `flag` taking one of `names` (as `parse` reads them) into an enum; anything else is the
// parser's error, which lists the names.
template <typename Enum>
CLI::Option* AddChoice(CLI::App& app, const std::string& flag, Enum& value,
                       absl::StatusOr<Enum> (*parse)(absl::string_view),
                       const std::vector<std::string>& names, const std::string& help) {
  return app.add_option(flag, value, help)
      ->transform(CLI::Validator(
          [parse](std::string& input) -> std::string {
            const absl::StatusOr<Enum> parsed = parse(input);
            if (!parsed.ok()) return std::string(parsed.status().message());
            // CLI11 then reads the enum from its number.
            input = std::to_string(static_cast<int>(*parsed));
            return "";
          },
          absl::StrJoin(names, "|")));
}

}  // namespace

void AddRankFlags(CLI::App& app, WorkerOptions& options) {
  const char* group = "Rank";
  app.add_option("--rank", options.rank,
                 "This process's rank, dp_rank * cp + cp_rank (default: from SLURM_PROCID, "
                 "JOB_COMPLETION_INDEX or RANK, else 0)")
      ->group(group);
  app.add_option("--world", options.world_size, "Processes in the gang")->group(group)->required();
  app.add_option("--dp", options.dp_size, "Data-parallel size")->group(group);
  app.add_option("--cp", options.cp_size, "Context-parallel size")->group(group);
  app.add_option("--rendezvous", options.rendezvous_address,
                 "host:port of the gang's TCP store; may be left out with --world 1")
      ->group(group);
  app.add_flag("--host-rendezvous", options.host_rendezvous,
               "Rank 0: host the store on --rendezvous (port 0: any; the ready line says "
               "where)")
      ->group(group);
}

void AddJobFlags(CLI::App& app, WorkerOptions& options) {
  const char* group = "Job";
  app.add_option("--datamixer", options.datamixer_address, "host:port of the datamixer")
      ->group(group);
  app.add_option("--stage", options.stage_path,
                 "Stage spec (prolong.v1.StageSpec, YAML, JSON or .textproto)")
      ->group(group)
      ->required();
  app.add_option("--seed", options.seed, "Seeds the model's initialization and the data plan")
      ->group(group);
  app.add_option("--model-config", options.model_config_path,
                 "Hugging Face config.json of a fresh Llama")
      ->group(group);
  app.add_option("--init-checkpoint", options.init_checkpoint,
                 "Start from a Hugging Face model directory, or from an earlier stage's "
                 "training checkpoint (or checkpoint directory: its newest), keeping its AdamW "
                 "state")
      ->group(group);
  app.add_option("--checkpoint-dir", options.checkpoint_dir,
                 "Where checkpoints go; a run resumes from its newest valid one")
      ->group(group)
      ->required();
  app.add_option("--checkpoint-every", options.checkpoint_every,
                 "Save every N optimizer steps (0: only at the end)")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--keep-last", options.keep_last, "Checkpoints kept (0: all)")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--micro-batch-sequences", options.micro_batch_sequences,
                 "Sequences per forward and backward")
      ->group(group)
      ->check(CLI::PositiveNumber);
  app.add_flag("--deterministic", options.deterministic,
               "Bitwise reproducible across restarts (one intra-op thread)")
      ->group(group);
  app.add_option("--threads", options.threads, "Intra-op threads (0: LibTorch's default)")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  parallel::ParallelPlan& plan = options.trainer.parallel;
  AddChoice(app, "--activation-checkpointing", plan.activation_checkpointing,
            parallel::ParseActivationCheckpointing, parallel::ActivationCheckpointingNames(),
            "Recompute each layer in backward: on, off, auto (on from 16K tokens), or "
            "selective (on, but keeping each layer's attention output so that attention is "
            "not computed again)")
      ->group(group);
  app.add_option("--device", options.device,
                 "cpu, cuda (one GPU per rank: LOCAL_RANK, else rank modulo the GPUs), or auto "
                 "(cuda if this build has CUDA and a GPU is visible)")
      ->group(group)
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  AddChoice(app, "--precision", plan.precision, parallel::ParsePrecision,
            parallel::PrecisionNames(),
            "bf16 (mixed: float32 weights and optimizer state), fp32, or auto (bf16 on a GPU)")
      ->group(group);
  AddChoice(app, "--cp-scheme", plan.cp_scheme, parallel::ParseCpScheme, parallel::CpSchemeNames(),
            "Context-parallel attention: all-gather (default; cheap under GQA), ring "
            "(overlaps K/V transfers with compute, holds one block at a time) or ulysses "
            "(all-to-all to whole sequences per head group; the heads must split among --cp)")
      ->group(group);
  AddChoice(app, "--gpu-attention", plan.gpu_attention, attention::ParseFusedKernel,
            attention::FusedKernelNames(),
            "How a GPU rank holding whole sequences (--cp 1) calls the fused attention "
            "kernels: hybrid (default: documents of 8,192 tokens or more as per-document-gqa, "
            "the runs of shorter ones as varlen-flash), per-document (SDPA per document), "
            "per-document-gqa (the same without expanding K/V), varlen-flash (one flash "
            "call over the packed sequence), per-document-cudnn (cuDNN per document, "
            "lengths padded). With --cp above 1 a GPU attends through the varlen flash "
            "kernel whatever this says")
      ->group(group);
  app.add_option("--read-ahead-batches", options.read_ahead_batches,
                 "Batches received ahead of training")
      ->group(group)
      ->check(CLI::PositiveNumber);
  app.add_option("--grad-clip-norm", options.trainer.grad_clip_norm,
                 "Global gradient norm clip (0: off)")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--weight-decay", options.trainer.adamw.weight_decay,
                 "AdamW weight decay of matrices")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--adam-beta1", options.trainer.adamw.beta1, "AdamW's beta1")
      ->group(group)
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--adam-beta2", options.trainer.adamw.beta2, "AdamW's beta2")
      ->group(group)
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--adam-epsilon", options.trainer.adamw.epsilon, "AdamW's epsilon")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--skip-nonfinite", options.trainer.skip_nonfinite,
               "Skip the update of a step whose loss or gradient norm is not finite, and go on "
               "(default: fail the run, keeping the last good checkpoint)")
      ->group(group);
  app.add_flag("--shard-optimizer-state", plan.shard_optimizer_state,
               "ZeRO-1: each rank keeps AdamW state for 1/world of the parameters (checkpoints "
               "still hold all of it)")
      ->group(group);
  app.add_flag("--shard-weights", plan.shard_weights,
               "ZeRO-3 / FSDP: each rank keeps 1/N of every parameter, gradient and AdamW moment "
               "and gathers a layer's weights only while it runs (turns activation "
               "checkpointing on; checkpoints still hold whole weights and state)")
      ->group(group);
  app.add_option("--shard-group-size", plan.shard_group_size,
                 "With --shard-weights, N: ranks sharing one copy of the weights, in groups of "
                 "consecutive ranks replicated across the others (hybrid sharding: N = GPUs per "
                 "node); 0, the default: all ranks")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--overlap-grad-reduce", plan.overlap_grad_reduce,
               "Reduce gradient buckets during the last backward pass (default true; false: "
               "after it, with the same result)")
      ->group(group);
  app.add_option("--rendezvous-timeout-seconds", options.rendezvous_timeout_seconds,
                 "How long the ranks wait for each other")
      ->group(group)
      ->check(CLI::PositiveNumber);
  app.add_option("--collective-timeout-seconds", options.collective_timeout_seconds,
                 "How long a collective waits for the slowest rank (checkpoint saves included)")
      ->group(group)
      ->check(CLI::PositiveNumber);
  app.add_option("--datamixer-timeout-seconds", options.datamixer_timeout_seconds,
                 "How long to wait for the datamixer to answer, and to come back when "
                 "a stream breaks or stalls")
      ->group(group)
      ->check(CLI::PositiveNumber);
  app.add_option("--peak-tflops", options.peak_tflops,
                 "Peak TFLOP/s of one rank's device, for MFU in the step log and on /metrics; 0: a "
                 "known GPU's dense bf16 peak when training in bf16, else MFU not shown")
      ->group(group)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--run-name", options.run_name, "Recorded in checkpoints")->group(group);
  app.add_option("--client-tls-ca", options.client_tls.tls_ca,
                 "PEM CA certificate that signed the datamixer's and the scheduler's "
                 "certificates: call them over TLS")
      ->group(group)
      ->check(CLI::ExistingFile);
  app.add_option("--client-tls-cert", options.client_tls.tls_cert,
                 "PEM certificate chain this worker presents to them (mutual TLS)")
      ->group(group)
      ->check(CLI::ExistingFile);
  app.add_option("--client-tls-key", options.client_tls.tls_key,
                 "PEM private key of --client-tls-cert")
      ->group(group)
      ->check(CLI::ExistingFile);
  // Hidden (empty group): a fault injection for tests.
  app.add_option("--inject-nonfinite-at-step", options.inject_nonfinite_at_step)->group("");
}

std::vector<std::string> JobFlagArgs(const WorkerOptions& o) {
  const train::TrainerOptions& trainer = o.trainer;
  const parallel::ParallelPlan& plan = trainer.parallel;
  std::vector<std::string> args = {
      absl::StrCat("--datamixer=", o.datamixer_address),
      absl::StrCat("--stage=", o.stage_path),
      absl::StrCat("--seed=", o.seed),
      absl::StrCat("--checkpoint-dir=", o.checkpoint_dir),
      absl::StrCat("--checkpoint-every=", o.checkpoint_every),
      absl::StrCat("--keep-last=", o.keep_last),
      absl::StrCat("--micro-batch-sequences=", o.micro_batch_sequences),
      absl::StrCat("--threads=", o.threads),
      absl::StrCat("--activation-checkpointing=",
                   parallel::ActivationCheckpointingName(plan.activation_checkpointing)),
      absl::StrCat("--device=", o.device),
      absl::StrCat("--precision=", parallel::PrecisionName(plan.precision)),
      absl::StrCat("--cp-scheme=", parallel::CpSchemeName(plan.cp_scheme)),
      absl::StrCat("--gpu-attention=", attention::FusedKernelName(plan.gpu_attention)),
      absl::StrCat("--read-ahead-batches=", o.read_ahead_batches),
      absl::StrCat("--grad-clip-norm=", trainer.grad_clip_norm),
      absl::StrCat("--weight-decay=", trainer.adamw.weight_decay),
      absl::StrCat("--adam-beta1=", trainer.adamw.beta1),
      absl::StrCat("--adam-beta2=", trainer.adamw.beta2),
      absl::StrCat("--adam-epsilon=", trainer.adamw.epsilon),
      absl::StrCat("--rendezvous-timeout-seconds=", o.rendezvous_timeout_seconds),
      absl::StrCat("--collective-timeout-seconds=", o.collective_timeout_seconds),
      absl::StrCat("--datamixer-timeout-seconds=", o.datamixer_timeout_seconds),
      absl::StrCat("--peak-tflops=", o.peak_tflops),
  };
  if (!o.model_config_path.empty()) {
    args.push_back(absl::StrCat("--model-config=", o.model_config_path));
  }
  if (!o.init_checkpoint.empty()) {
    args.push_back(absl::StrCat("--init-checkpoint=", o.init_checkpoint));
  }
  if (o.deterministic) args.push_back("--deterministic");
  if (trainer.skip_nonfinite) args.push_back("--skip-nonfinite");
  if (plan.shard_optimizer_state) args.push_back("--shard-optimizer-state");
  if (plan.shard_weights) {
    args.push_back("--shard-weights");
    args.push_back(absl::StrCat("--shard-group-size=", plan.shard_group_size));
  }
  if (!plan.overlap_grad_reduce) args.push_back("--overlap-grad-reduce=false");
  if (!o.run_name.empty()) args.push_back(absl::StrCat("--run-name=", o.run_name));
  if (!o.client_tls.tls_ca.empty()) {
    args.push_back(absl::StrCat("--client-tls-ca=", o.client_tls.tls_ca));
  }
  if (!o.client_tls.tls_cert.empty()) {
    args.push_back(absl::StrCat("--client-tls-cert=", o.client_tls.tls_cert));
  }
  if (!o.client_tls.tls_key.empty()) {
    args.push_back(absl::StrCat("--client-tls-key=", o.client_tls.tls_key));
  }
  if (o.inject_nonfinite_at_step >= 0) {
    args.push_back(absl::StrCat("--inject-nonfinite-at-step=", o.inject_nonfinite_at_step));
  }
  return args;
}

absl::StatusOr<JobFiles> CheckJob(const WorkerOptions& options) {
  JobFiles files;
  RETURN_IF_ERROR(Annotate(ReadProtoFile(options.stage_path, &files.stage), "--stage"));
  const std::string stage_flag = absl::StrCat("--stage: ", options.stage_path);
  if (files.stage.seq_len() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(stage_flag, ": seq_len must be >= 1"));
  }
  RETURN_IF_ERROR(Annotate(StageSchedule(files.stage, 1).status(), stage_flag));

  if (options.model_config_path.empty() == options.init_checkpoint.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --model-config (a fresh model) and --init-checkpoint (a model "
        "directory or training checkpoint)");
  }
  absl::StatusOr<model::LlamaConfig> config;
  if (!options.model_config_path.empty()) {
    config = model::ReadLlamaConfig(options.model_config_path);
    if (!config.ok()) return Annotate(config.status(), "--model-config");
  } else {
    // Sizes only: checksums are verified when the optimizer state is loaded.
    absl::StatusOr<checkpoint::ModelSource> source = checkpoint::ResolveModelSource(
        options.init_checkpoint, checkpoint::Verification::kSizesOnly);
    if (!source.ok()) return Annotate(source.status(), "--init-checkpoint");
    files.init_model_dir = source->model_dir;
    files.init_training_checkpoint = source->training_checkpoint;
    config = model::ReadLlamaConfig(files.init_model_dir + "/config.json");
    if (!config.ok()) return Annotate(config.status(), "--init-checkpoint");
  }
  files.model_config = *std::move(config);
  RETURN_IF_ERROR(parallel::CheckCpHeads(options.trainer.parallel.cp_scheme,
                                         files.model_config.num_attention_heads,
                                         files.model_config.num_key_value_heads, options.cp_size));
  RETURN_IF_ERROR(
      Annotate(parallel::CheckWeightSharding(options.trainer.parallel, options.world_size),
               "--shard-weights"));

  if (options.checkpoint_dir.empty()) {
    return absl::InvalidArgumentError("--checkpoint-dir: required");
  }
  ASSIGN_OR_RETURN(files.client_security, LoadClientSecurity(options.client_tls, "--client-"));
  RETURN_IF_ERROR(train::ValidateTrainerOptions(options.trainer));
  if (options.deterministic && options.threads > 1) {
    return absl::InvalidArgumentError(
        "--deterministic runs one intra-op thread; leave out --threads");
  }
  return files;
}

absl::Status CheckRank(const WorkerOptions& options) {
  if (options.world_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--world: must be >= 1, got ", options.world_size));
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rank: ", options.rank, " is not in [0, ", options.world_size, ")"));
  }
  if (options.dp_size < 1 || options.cp_size < 1 ||
      options.dp_size * options.cp_size != options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("--dp (", options.dp_size, ") x --cp (",
                                                   options.cp_size, ") must equal --world (",
                                                   options.world_size, ")"));
  }
  if (options.world_size > 1 && options.rendezvous_address.empty()) {
    return absl::InvalidArgumentError("--rendezvous: required when --world is above 1");
  }
  if (options.host_rendezvous && options.rank != 0) {
    return absl::InvalidArgumentError("--host-rendezvous: only rank 0 hosts the store");
  }
  if (options.host_rendezvous && options.rendezvous_address.empty()) {
    return absl::InvalidArgumentError("--host-rendezvous: needs --rendezvous HOST:PORT");
  }
  return absl::OkStatus();
}

absl::StatusOr<train::LrSchedule> StageSchedule(const v1::StageSpec& stage, int64_t steps) {
  const v1::LearningRateSchedule& spec = stage.schedule();
  if (!(spec.peak_lr() > 0) || !std::isfinite(spec.peak_lr())) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule.peak_lr must be positive, got ", spec.peak_lr()));
  }
  train::LrSchedule schedule;
  schedule.peak_lr = spec.peak_lr();
  schedule.warmup_fraction = spec.warmup_fraction();
  schedule.min_lr_ratio = spec.min_lr_ratio();
  schedule.steps = steps;
  switch (spec.shape()) {
    case v1::SCHEDULE_SHAPE_UNSPECIFIED:
    case v1::SCHEDULE_SHAPE_COSINE:
      schedule.shape = train::ScheduleShape::kCosine;
      break;
    case v1::SCHEDULE_SHAPE_LINEAR:
      schedule.shape = train::ScheduleShape::kLinear;
      break;
    case v1::SCHEDULE_SHAPE_CONSTANT:
      schedule.shape = train::ScheduleShape::kConstant;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("schedule.shape has no meaning: ", spec.shape()));
  }
  RETURN_IF_ERROR(train::ValidateLrSchedule(schedule));
  return schedule;
}

}  // namespace prolong::worker
