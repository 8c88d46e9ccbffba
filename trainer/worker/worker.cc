#include "trainer/worker/worker.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ATen/Context.h"
#include "ATen/Parallel.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "torch/version.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/training_checkpoint.h"
#include "trainer/comm/communicator.h"
#include "trainer/device_info.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/llama_flops.h"
#include "trainer/parallel/parallel_plan.h"
#include "trainer/parallel/parallelize.h"
#include "trainer/train/batch.h"
#include "trainer/train/trainer.h"
#include "trainer/worker/data_client.h"
#include "trainer/worker/device.h"

namespace prolong::worker {
namespace {

struct Metrics {
  prometheus::Gauge* step;
  prometheus::Gauge* loss;
  prometheus::Gauge* learning_rate;
  prometheus::Gauge* grad_norm;
  prometheus::Gauge* tokens_per_second;
  prometheus::Gauge* step_seconds;
  prometheus::Gauge* plan_steps;
  prometheus::Gauge* last_checkpoint_step;
  prometheus::Gauge* peak_host_memory;
  prometheus::Gauge* peak_device_memory;
  prometheus::Gauge* model_flops_per_second;
  prometheus::Gauge* mfu = nullptr;  // registered once the device's peak is known
  prometheus::Counter* tokens;
  prometheus::Counter* checkpoints;
};

Metrics RegisterMetrics(prometheus::Registry& registry) {
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  };
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
  };
  Metrics metrics;
  metrics.step = gauge("prolong_trainer_step", "Steps of the stage's plan trained so far.");
  metrics.loss = gauge("prolong_trainer_loss",
                       "The last step's loss: mean cross-entropy over the global batch's targets.");
  metrics.learning_rate = gauge("prolong_trainer_learning_rate", "The last step's learning rate.");
  metrics.grad_norm =
      gauge("prolong_trainer_grad_norm", "The last step's global gradient norm before clipping.");
  metrics.tokens_per_second =
      gauge("prolong_trainer_tokens_per_second",
            "This rank's input tokens per second over the last step (sum over ranks for the job).");
  metrics.step_seconds = gauge("prolong_trainer_step_seconds",
                               "Wall time of the last step, waiting for data included.");
  metrics.plan_steps = gauge("prolong_trainer_plan_steps", "Steps in the stage's plan.");
  metrics.last_checkpoint_step = gauge("prolong_trainer_last_checkpoint_step",
                                       "Step of the newest checkpoint saved or loaded.");
  auto& peak_memory =
      prometheus::BuildGauge()
          .Name("prolong_trainer_peak_memory_bytes")
          .Help(
              "This rank's peak memory so far: the process's resident set (memory=\"host\"), "
              "and on a GPU what its caching allocator held allocated (memory=\"device\").")
          .Register(registry);
  metrics.peak_host_memory = &peak_memory.Add({{"memory", "host"}});
  metrics.peak_device_memory = &peak_memory.Add({{"memory", "device"}});
  metrics.model_flops_per_second =
      gauge("prolong_trainer_model_flops_per_second",
            "Model FLOPs of the last step (matrix products and causal attention, "
            "recomputation not counted) per second of it, per rank of the job.");
  metrics.tokens = counter("prolong_trainer_tokens_total",
                           "Input tokens this rank trained on since it started (sum over ranks "
                           "for the job).");
  metrics.checkpoints =
      counter("prolong_trainer_checkpoints_total", "Checkpoints saved since this rank started.");
  return metrics;
}

// A stable 64-bit hash, the same in every process (absl::Hash is not).
int64_t Fnv1a(absl::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return static_cast<int64_t>(hash);
}

std::string What(const std::exception& error) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) {
    return c10_error->what_without_backtrace();
  }
  return error.what();
}

}  // namespace

struct Worker::State {
  State(WorkerOptions options, JobFiles files, prometheus::Registry& registry)
      : options(std::move(options)),
        files(std::move(files)),
        registry(registry),
        metrics(RegisterMetrics(registry)) {}

  absl::StatusOr<Outcome> Run();
  absl::Status Join();
  absl::Status Plan(DataClient& data);
  absl::Status Build();
  absl::StatusOr<int64_t> Resume();
  absl::Status ContinueFromEarlierStage();
  absl::Status CheckCursor(const std::string& path, const checkpoint::TrainerState& state) const;
  absl::StatusOr<Outcome> Train(DataClient& data, int64_t start_step);
  void Report(const train::StepMetrics& step, int64_t global_step, int64_t rank_tokens,
              double seconds);
  absl::Status Save(int64_t global_step);
  bool AgreeToStop();

  // Every rank's `value`, in rank order.
  std::vector<int64_t> AllGather(int64_t value);
  // Every rank learns whether any rank failed `what`, so that all of them stop together instead
  // of some waiting in a collective for a rank that gave up. The local error if there is one,
  // else ABORTED naming the ranks that failed.
  absl::Status Agree(const absl::Status& local, absl::string_view what);
  std::string NewestCheckpointNote() const;

  const WorkerOptions options;
  const JobFiles files;
  prometheus::Registry& registry;
  Metrics metrics;

  std::unique_ptr<comm::StoreServer> store;  // with --host-rendezvous
  std::string rendezvous_address;

  absl::Mutex mu;
  bool training ABSL_GUARDED_BY(mu) = false;
  std::atomic<bool> stop_requested{false};

  c10::Device device{c10::kCPU};
  bool distributed = false;
  comm::ProcessGroups groups;
  v1::StagePlan plan;
  std::shared_ptr<model::LlamaForCausalLM> model;
  std::unique_ptr<train::Trainer> trainer;
  train::LrSchedule schedule;
  model::TrainingFlops flops;
  // One rank's peak FLOP/s for MFU: --peak-tflops, else a known GPU's bf16 peak, else 0 (none).
  double peak_flops = 0;
  // The steps this process trained: the job's tokens and model FLOPs, and the steps' seconds.
  struct {
    int64_t steps = 0;
    double tokens = 0, flops = 0, seconds = 0;
  } trained;
  absl::Time start;
  double elapsed_before = 0;  // training time of earlier runs, from the checkpoint
  std::string newest_checkpoint;
  WorkerObserver observer;
};

Worker::Worker(std::unique_ptr<State> state) : state_(std::move(state)) {}
Worker::~Worker() = default;

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(const WorkerOptions& options,
                                                       prometheus::Registry& registry) {
  RETURN_IF_ERROR(CheckRank(options));
  ASSIGN_OR_RETURN(JobFiles files, CheckJob(options));
  auto state = std::make_unique<State>(options, std::move(files), registry);
  state->rendezvous_address = options.rendezvous_address;
  if (options.host_rendezvous) {
    ASSIGN_OR_RETURN(const HostPort address,
                     ParseHostPort(options.rendezvous_address, "--rendezvous"));
    absl::StatusOr<std::unique_ptr<comm::StoreServer>> store =
        comm::ServeStore(address.host, address.port);
    if (!store.ok()) return Annotate(store.status(), "--host-rendezvous");
    state->store = *std::move(store);
    state->rendezvous_address = state->store->address();
  }
  return std::unique_ptr<Worker>(new Worker(std::move(state)));
}

const std::string& Worker::rendezvous_address() const { return state_->rendezvous_address; }

absl::StatusOr<Outcome> Worker::Run() {
  try {
    return state_->Run();
  } catch (const std::exception& error) {
    // Collectives throw when a peer dies.
    return absl::InternalError(absl::StrCat("rank ", state_->options.rank, ": ", What(error),
                                            state_->NewestCheckpointNote()));
  }
}

void Worker::SetObserver(WorkerObserver observer) { state_->observer = std::move(observer); }

bool Worker::RequestStop() {
  absl::MutexLock lock(&state_->mu);
  state_->stop_requested = true;
  return state_->training;
}

std::vector<int64_t> Worker::State::AllGather(int64_t value) {
  if (!distributed) return {value};
  const torch::Tensor all = groups.world->AllGather(torch::tensor({value}, torch::kInt64));
  return std::vector<int64_t>(all.data_ptr<int64_t>(), all.data_ptr<int64_t>() + all.numel());
}

absl::Status Worker::State::Agree(const absl::Status& local, absl::string_view what) {
  const std::vector<int64_t> failed = AllGather(local.ok() ? 0 : 1);
  if (!local.ok()) return local;
  std::vector<int> ranks;
  for (size_t r = 0; r < failed.size(); ++r) {
    if (failed[r] != 0) ranks.push_back(static_cast<int>(r));
  }
  if (ranks.empty()) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat(what, " failed on rank", ranks.size() > 1 ? "s " : " ",
                                         absl::StrJoin(ranks, ", "), " (its log says why)"));
}

std::string Worker::State::NewestCheckpointNote() const {
  if (newest_checkpoint.empty()) return "";
  return absl::StrCat("; the newest checkpoint is ", newest_checkpoint);
}

absl::StatusOr<Outcome> Worker::State::Run() {
  start = absl::Now();
  if (options.deterministic) {
    // Reductions split work by thread count; one thread gives the same bits on every run.
    SetComputeThreads(1);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  } else if (options.threads > 0) {
    SetComputeThreads(options.threads);
  }
  ASSIGN_OR_RETURN(device, SelectDevice(options));
  RETURN_IF_ERROR(Join());
  DataClient data(options.datamixer_address, absl::Seconds(options.datamixer_timeout_seconds),
                  files.client_security);
  RETURN_IF_ERROR(Plan(data));
  RETURN_IF_ERROR(Agree(Build(), "building the model"));
  ASSIGN_OR_RETURN(const int64_t start_step, Resume());
  return Train(data, start_step);
}

absl::Status Worker::State::Join() {
  if (options.world_size == 1 && rendezvous_address.empty()) return absl::OkStatus();
  comm::RendezvousOptions rendezvous;
  rendezvous.store_address = rendezvous_address;
  rendezvous.rank = options.rank;
  rendezvous.world_size = options.world_size;
  rendezvous.dp_size = options.dp_size;
  rendezvous.cp_size = options.cp_size;
  rendezvous.shard_size =
      options.trainer.parallel.shard_weights ? options.trainer.parallel.shard_group_size : 0;
  rendezvous.timeout = absl::Seconds(options.rendezvous_timeout_seconds);
  rendezvous.collective_timeout = absl::Seconds(options.collective_timeout_seconds);
  ASSIGN_OR_RETURN(groups, JoinGang(rendezvous, device));
  distributed = true;
  PROLONG_LOG(INFO) << "rank " << options.rank << " of " << options.world_size
                    << " joined (dp rank " << groups.dp_rank << " of " << options.dp_size
                    << ", cp rank " << groups.cp_rank << " of " << options.cp_size << ") on "
                    << device.str();
  return absl::OkStatus();
}

absl::Status Worker::State::Plan(DataClient& data) {
  absl::StatusOr<v1::StagePlan> planned = data.PlanStage(files.stage, options.seed);
  RETURN_IF_ERROR(Agree(planned.status(), "PlanStage"));
  plan = *std::move(planned);
  const std::vector<int64_t> ids = AllGather(Fnv1a(plan.plan_id()));
  for (size_t r = 0; r < ids.size(); ++r) {
    if (ids[r] != ids[0]) {
      return absl::FailedPreconditionError(
          absl::StrCat("ranks 0 and ", r, " got different plans (this rank: ", plan.plan_id(),
                       "); every rank must use the same datamixer data, stage spec and --seed"));
    }
  }
  metrics.plan_steps->Set(static_cast<double>(plan.steps()));
  if (options.rank == 0) {
    PROLONG_LOG(INFO) << "stage " << files.stage.name() << ": plan " << plan.plan_id() << ", "
                      << plan.steps() << " steps of " << plan.sequences_per_batch()
                      << " sequences of " << plan.seq_len() << " tokens, data "
                      << plan.fingerprint();
  }
  return absl::OkStatus();
}

absl::Status Worker::State::Build() {
  if (!files.init_model_dir.empty()) {
    absl::StatusOr<std::shared_ptr<model::LlamaForCausalLM>> loaded =
        model::LoadLlama(files.init_model_dir);
    if (!loaded.ok()) return Annotate(loaded.status(), "--init-checkpoint");
    model = *std::move(loaded);
  } else {
    ASSIGN_OR_RETURN(model, model::CreateLlama(files.model_config, options.seed));
  }
  if (files.stage.rope_theta() > 0) RETURN_IF_ERROR(model->SetRopeTheta(files.stage.rope_theta()));

  ASSIGN_OR_RETURN(schedule, StageSchedule(files.stage, plan.steps()));
  const parallel::ParallelPlan parallel_plan =
      parallel::ResolveAuto(options.trainer.parallel, files.stage.seq_len(), device.is_cuda());
  ASSIGN_OR_RETURN(
      parallel::ParallelModel parallelized,
      parallel::Parallelize(model, distributed ? &groups : nullptr, parallel_plan, device));
  const bool bf16 = parallelized.bf16_autocast;
  if (options.rank == 0) {
    PROLONG_LOG(INFO) << "training on " << device.str()
                      << (bf16 ? " in bf16 mixed precision" : " in float32") << ", attention "
                      << parallelized.attention << ", activation checkpointing "
                      << parallel::ActivationCheckpointingName(
                             parallel_plan.activation_checkpointing);
  }
  ASSIGN_OR_RETURN(trainer,
                   train::Trainer::Create(std::move(parallelized), options.trainer, schedule));

  flops = model::LlamaTrainingFlops(model->config());
  const std::string gpu =
      device.is_cuda() ? trainer::CudaDeviceName(std::max<int>(device.index(), 0)) : "";
  if (options.peak_tflops > 0) {
    peak_flops = options.peak_tflops * 1e12;
  } else if (bf16) {
    peak_flops = trainer::PeakDenseBf16Tflops(gpu) * 1e12;
  }
  if (peak_flops > 0) {
    metrics.mfu = &prometheus::BuildGauge()
                       .Name("prolong_trainer_mfu_ratio")
                       .Help(
                           "Model FLOPs utilization of the last step: model FLOP/s per rank "
                           "over one device's peak (--peak-tflops, or the GPU's bf16 peak).")
                       .Register(registry)
                       .Add({});
  }
  if (options.rank == 0 && peak_flops > 0) {
    PROLONG_LOG(INFO) << "MFU against a peak of " << peak_flops / 1e12 << " TFLOP/s per rank"
                      << (options.peak_tflops > 0 ? "" : " (" + gpu + ", dense bf16)");
  } else if (options.rank == 0) {
    PROLONG_LOG(INFO) << "MFU not shown: no known peak for " << (gpu.empty() ? device.str() : gpu)
                      << " (--peak-tflops gives one)";
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Worker::State::Resume() {
  // Rank 0 owns the directory: it cleans up after a crashed save and picks the checkpoint;
  // every rank then loads that one.
  int64_t step = -1;
  absl::Status found;
  if (options.rank == 0) {
    checkpoint::FindOptions find;
    find.remove_leftovers = true;
    absl::StatusOr<checkpoint::CheckpointRef> latest =
        checkpoint::FindLatestValid(options.checkpoint_dir, find);
    if (latest.ok()) {
      step = latest->step;
    } else if (!absl::IsNotFound(latest.status())) {
      found = latest.status();
    }
  }
  RETURN_IF_ERROR(Agree(found, "looking for checkpoints"));
  step = AllGather(step)[0];
  if (step < 0) {
    if (options.rank == 0) {
      PROLONG_LOG(INFO) << "no checkpoint in " << options.checkpoint_dir << ": starting at step 0";
    }
    RETURN_IF_ERROR(ContinueFromEarlierStage());
    return 0;
  }

  const std::string path = absl::StrCat(options.checkpoint_dir, "/", checkpoint::StepDirName(step));
  checkpoint::TrainerState state;
  checkpoint::LoadOptions load;
  // Rank 0 verified it fully a moment ago; the others trust that.
  load.verification = std::nullopt;
  // The checkpoint holds every parameter's state; with sharding this rank reads its own share.
  load.optimizer_parameters = [&](const std::string& parameter) {
    return trainer->KeepsOptimizerStateOf(parameter);
  };
  load.parts = trainer->parameter_parts();
  const absl::Status loaded =
      checkpoint::LoadCheckpoint(path, *model, trainer->optimizer(), &state, load);
  RETURN_IF_ERROR(Agree(loaded, absl::StrCat("loading ", path)));
  RETURN_IF_ERROR(CheckCursor(path, state));
  int64_t stage_step = state.step;
  const auto stage_step_entry = state.schedule.find("stage_step");
  if (stage_step_entry != state.schedule.end() &&
      !absl::SimpleAtoi(stage_step_entry->second, &stage_step)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": trainer_state.json: schedule.stage_step is not an integer"));
  }
  RETURN_IF_ERROR(trainer->SetProgress(state.step, stage_step));
  int64_t global_step = 0;
  if (!absl::SimpleAtoi(state.data_cursor.at("global_step"), &global_step) || global_step < 0 ||
      global_step > plan.steps()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": trainer_state.json: data_cursor.global_step must be in [0, ",
                     plan.steps(), "], got ", state.data_cursor.at("global_step")));
  }
  elapsed_before = state.elapsed_seconds;
  newest_checkpoint = path;
  metrics.last_checkpoint_step->Set(static_cast<double>(global_step));
  if (options.rank == 0) {
    PROLONG_LOG(INFO) << "resumed from " << path << ": step " << global_step << " of "
                      << plan.steps();
  }
  return global_step;
}

absl::Status Worker::State::ContinueFromEarlierStage() {
  const std::string& path = files.init_training_checkpoint;
  if (path.empty()) return absl::OkStatus();
  // Build loaded the weights; what the earlier stage adds is its optimizer and its step count.
  // Rank 0 verifies every checksum once; the ranks then read the same files.
  absl::Status verified;
  if (options.rank == 0) verified = checkpoint::VerifyCheckpoint(path);
  RETURN_IF_ERROR(Agree(verified, absl::StrCat("verifying --init-checkpoint ", path)));
  absl::StatusOr<checkpoint::TrainerState> state = checkpoint::ReadTrainerState(path);
  RETURN_IF_ERROR(Agree(state.status(), absl::StrCat("reading ", path)));
  // The run's step count goes on across stages (checkpoint names and AdamW's bias correction
  // both continue); the new stage's schedule starts at its own step 0.
  RETURN_IF_ERROR(trainer->SetProgress(state->step, 0));
  if (files.stage.reset_optimizer_state()) {
    if (options.rank == 0) {
      PROLONG_LOG(INFO) << "stage " << files.stage.name() << " starts from the weights of " << path
                        << " (run step " << state->step
                        << ") with fresh AdamW state (reset_optimizer_state)";
    }
    return absl::OkStatus();
  }
  absl::Status restored = [&]() -> absl::Status {
    // With ZeRO-1, this rank's share only; with sharded weights, the blocks of its shards.
    ASSIGN_OR_RETURN(
        const checkpoint::OptimizerState optimizer,
        checkpoint::ReadOptimizerState(
            path,
            [&](const std::string& parameter) { return trainer->KeepsOptimizerStateOf(parameter); },
            trainer->parameter_parts()));
    return checkpoint::RestoreAdamWState(optimizer, model->named_parameters(),
                                         trainer->optimizer());
  }();
  RETURN_IF_ERROR(Agree(restored, absl::StrCat("loading the optimizer state of ", path)));
  if (options.rank == 0) {
    PROLONG_LOG(INFO) << "stage " << files.stage.name() << " starts from " << path << " (stage '"
                      << state->stage_name << "', run step " << state->step
                      << "): weights and AdamW state carried over, schedule restarted";
  }
  return absl::OkStatus();
}

absl::Status Worker::State::CheckCursor(const std::string& path,
                                        const checkpoint::TrainerState& state) const {
  if (!state.stage_name.empty() && state.stage_name != files.stage.name()) {
    // ProLong's stage 2 from stage 1's directory: what the operator most likely meant.
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to resume from ", path, ": it is a checkpoint of stage '", state.stage_name,
        "', and this run trains stage '", files.stage.name(),
        "'; give each stage its own --checkpoint-dir, and start this one from that checkpoint "
        "with --init-checkpoint ",
        path));
  }
  auto cursor = [&](const std::string& key) {
    const auto found = state.data_cursor.find(key);
    return found == state.data_cursor.end() ? std::string("(none)") : found->second;
  };
  const std::string plan_id = cursor("plan_id");
  const std::string fingerprint = cursor("data_fingerprint");
  if (fingerprint != plan.fingerprint()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to resume from ", path, ": it was trained on data fingerprint ", fingerprint,
        " (plan ", plan_id, "), but the datamixer at ", options.datamixer_address,
        " now holds data fingerprint ", plan.fingerprint(), " (plan ", plan.plan_id(),
        "); a run resumes only on its own data: restore that data, or start a new run with "
        "another --checkpoint-dir"));
  }
  if (plan_id != plan.plan_id() || cursor("global_step") == "(none)") {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to resume from ", path, ": it was trained on plan ", plan_id, ", but stage '",
        files.stage.name(), "' with --seed ", options.seed, " plans ", plan.plan_id(),
        " on the same data (", plan.fingerprint(), "): the stage spec or the seed changed"));
  }
  return absl::OkStatus();
}

bool Worker::State::AgreeToStop() {
  const std::vector<int64_t> votes = AllGather(stop_requested ? 1 : 0);
  for (int64_t vote : votes) {
    if (vote != 0) return true;
  }
  return false;
}

absl::StatusOr<Outcome> Worker::State::Train(DataClient& data, int64_t start_step) {
  {
    absl::MutexLock lock(&mu);
    training = true;
  }
  const int64_t steps = plan.steps();
  metrics.step->Set(static_cast<double>(start_step));
  if (start_step >= steps) {
    if (options.rank == 0) {
      PROLONG_LOG(INFO) << "the plan's " << steps << " steps are already trained";
    }
    return Outcome::kFinished;
  }
  v1::RankSpec rank;
  rank.set_dp_rank(distributed ? groups.dp_rank : 0);
  rank.set_dp_size(options.dp_size);
  rank.set_cp_rank(distributed ? groups.cp_rank : 0);
  rank.set_cp_size(options.cp_size);
  rank.set_micro_batch_sequences(options.micro_batch_sequences);
  std::unique_ptr<BatchStream> stream = data.StreamBatches(files.stage, options.seed, plan, rank,
                                                           start_step, options.read_ahead_batches);

  absl::Time last = absl::Now();
  for (int64_t step = start_step; step < steps; ++step) {
    absl::StatusOr<v1::Batch> batch = stream->Next();
    if (!batch.ok()) {
      return absl::Status(batch.status().code(),
                          absl::StrCat("step ", step + 1, "/", steps, ": ",
                                       batch.status().message(), NewestCheckpointNote()));
    }
    if (batch->step() != step) {
      return absl::DataLossError(absl::StrCat("datamixer ", options.datamixer_address,
                                              " sent step ", batch->step(), " where ", step,
                                              " was due"));
    }
    ASSIGN_OR_RETURN(const train::StepInput input,
                     train::StepInputFromBatch(*batch, options.micro_batch_sequences));
    int64_t rank_tokens = 0;
    for (const train::MicroBatch& micro_batch : input.micro_batches) {
      rank_tokens += micro_batch.input_ids.size(0);
    }
    if (step == options.inject_nonfinite_at_step) {
      torch::NoGradGuard no_grad;
      model->model->norm->weight.fill_(std::nan(""));
    }
    absl::StatusOr<train::StepMetrics> trained = trainer->Step(input);
    if (!trained.ok()) {
      // Nothing was updated and nothing is saved: the newest checkpoint stays the last good one.
      return absl::Status(trained.status().code(),
                          absl::StrCat("step ", step + 1, "/", steps, ": ",
                                       trained.status().message(), NewestCheckpointNote()));
    }
    const absl::Time now = absl::Now();
    Report(*trained, step, rank_tokens, absl::ToDoubleSeconds(now - last));

    const bool stop = AgreeToStop();
    const bool done = step + 1 == steps;
    if (done || stop ||
        (options.checkpoint_every > 0 && (step + 1) % options.checkpoint_every == 0)) {
      RETURN_IF_ERROR(Save(step + 1));
    }
    if (stop && !done) {
      if (options.rank == 0) {
        PROLONG_LOG(INFO) << "stopped on request after step " << step + 1 << " of " << steps;
      }
      return Outcome::kStopped;
    }
    last = absl::Now();
  }
  if (options.rank == 0 && trained.steps > 0) {
    // Steps alone (no start-up or checkpoint writing): the figures to compare runs by.
    const double flops_per_rank = trained.flops / trained.seconds / options.world_size;
    std::string line = absl::StrFormat(
        "stage %s done: %d steps in %.1f s; the %d steps of this run: %.0f tokens/s, "
        "%.3g TFLOP/s/rank",
        files.stage.name(), steps, absl::ToDoubleSeconds(absl::Now() - start), trained.steps,
        trained.tokens / trained.seconds, flops_per_rank / 1e12);
    if (peak_flops > 0)
      absl::StrAppendFormat(&line, ", MFU %.1f%%", 100 * flops_per_rank / peak_flops);
    PROLONG_LOG(INFO) << line;
  }
  return Outcome::kFinished;
}

void Worker::State::Report(const train::StepMetrics& step, int64_t global_step, int64_t rank_tokens,
                           double seconds) {
  seconds = std::max(seconds, 1e-9);
  metrics.step->Set(static_cast<double>(global_step + 1));
  metrics.loss->Set(step.loss);
  metrics.learning_rate->Set(step.lr);
  metrics.grad_norm->Set(step.grad_norm);
  metrics.tokens->Increment(static_cast<double>(rank_tokens));
  metrics.tokens_per_second->Set(static_cast<double>(rank_tokens) / seconds);
  metrics.step_seconds->Set(seconds);
  metrics.peak_host_memory->Set(static_cast<double>(step.peak_rss_bytes));
  metrics.peak_device_memory->Set(static_cast<double>(step.peak_device_bytes));
  // Every rank knows the whole step's tokens and attention pairs (the Trainer gathers them).
  const double step_flops = flops.Of(step.tokens, step.attention_pairs);
  ++trained.steps;
  trained.tokens += static_cast<double>(step.tokens);
  trained.flops += step_flops;
  trained.seconds += seconds;
  const double flops_per_rank = step_flops / seconds / options.world_size;
  metrics.model_flops_per_second->Set(flops_per_rank);
  if (metrics.mfu != nullptr) metrics.mfu->Set(flops_per_rank / peak_flops);
  if (observer.on_step) {
    v1::StepMetrics report;
    report.set_stage(files.stage.name());
    report.set_step(global_step + 1);
    report.set_loss(step.loss);
    report.set_learning_rate(step.lr);
    report.set_grad_norm(step.grad_norm);
    report.set_tokens_per_second(static_cast<double>(step.tokens) / seconds);
    if (peak_flops > 0) report.set_mfu(flops_per_rank / peak_flops);
    report.set_tokens_seen((global_step + 1) * plan.sequences_per_batch() * plan.seq_len());
    report.set_peak_memory_bytes(device.is_cuda() ? step.peak_device_bytes : step.peak_rss_bytes);
    const int64_t now = absl::ToUnixMicros(absl::Now());
    report.mutable_time()->set_seconds(now / 1000000);
    report.mutable_time()->set_nanos(static_cast<int32_t>(now % 1000000) * 1000);
    observer.on_step(report);
  }
  if (options.rank != 0) return;
  const double tokens_per_second = static_cast<double>(step.tokens) / seconds;
  std::string line = absl::StrFormat(
      "step %d/%d loss %.6f lr %.4g grad_norm %.4g tokens %d tokens/s %.0f TFLOP/s/rank %.3g",
      global_step + 1, plan.steps(), step.loss, step.lr, step.grad_norm, step.tokens,
      tokens_per_second, flops_per_rank / 1e12);
  if (peak_flops > 0)
    absl::StrAppendFormat(&line, " MFU %.1f%%", 100 * flops_per_rank / peak_flops);
  // The GPU's memory is the one that runs out there; on the CPU, the process's.
  const int64_t peak = device.is_cuda() ? step.peak_device_bytes : step.peak_rss_bytes;
  absl::StrAppendFormat(&line, " peak_mem %.2fGiB time %.3fs", peak / double(int64_t{1} << 30),
                        seconds);
  if (step.skipped) line += " (update skipped: non-finite)";
  PROLONG_LOG(INFO) << line;
}

absl::Status Worker::State::Save(int64_t global_step) {
  const absl::Time save_start = absl::Now();
  // With sharding, rank 0 collects the whole model and every parameter's state so the
  // checkpoint holds it all (and resumes with or without sharding, at any size); each rank keeps
  // its share again after saving.
  trainer->PrepareToSave();
  absl::StatusOr<std::string> saved = std::string();
  if (options.rank == 0) {
    saved = [&]() -> absl::StatusOr<std::string> {
      ASSIGN_OR_RETURN(
          checkpoint::OptimizerState optimizer,
          checkpoint::ExtractAdamWState(trainer->optimizer(), model->named_parameters()));
      checkpoint::TrainerState state;
      state.step = trainer->steps();
      state.stage_name = files.stage.name();
      state.schedule = {
          {"stage_step", absl::StrCat(trainer->stage_step())},
          {"steps", absl::StrCat(schedule.steps)},
          {"next_lr", absl::StrCat(train::LearningRate(schedule, trainer->stage_step()))},
      };
      state.data_cursor = {
          {"plan_id", plan.plan_id()},
          {"data_fingerprint", plan.fingerprint()},
          {"stage", files.stage.name()},
          {"seed", absl::StrCat(options.seed)},
          {"global_step", absl::StrCat(global_step)},
      };
      state.rng = checkpoint::CaptureRngState();
      state.run.run_name = options.run_name;
      state.run.dp_size = options.dp_size;
      state.run.cp_size = options.cp_size;
      state.run.versions = {{"prolong", kVersion}, {"torch", TORCH_VERSION}};
      state.elapsed_seconds = elapsed_before + absl::ToDoubleSeconds(absl::Now() - start);
      checkpoint::SaveOptions save;
      save.keep_last = options.keep_last;
      return checkpoint::SaveCheckpoint(options.checkpoint_dir, *model, optimizer, state, save);
    }();
  }
  trainer->ShardState();
  // Also the barrier that keeps every rank from running ahead of the checkpoint.
  RETURN_IF_ERROR(
      Agree(saved.status(), absl::StrCat("saving the checkpoint of step ", global_step)));
  if (options.rank == 0) {
    newest_checkpoint = *saved;
    if (observer.on_checkpoint) {
      v1::Checkpoint checkpoint;
      checkpoint.set_stage(files.stage.name());
      checkpoint.set_step(global_step);
      checkpoint.set_path(*saved);
      const int64_t now = absl::ToUnixMicros(absl::Now());
      checkpoint.mutable_time()->set_seconds(now / 1000000);
      checkpoint.mutable_time()->set_nanos(static_cast<int32_t>(now % 1000000) * 1000);
      checkpoint.mutable_data_cursor()->set_fingerprint(plan.fingerprint());
      checkpoint.mutable_data_cursor()->set_plan_id(plan.plan_id());
      checkpoint.mutable_data_cursor()->set_next_step(global_step);
      observer.on_checkpoint(checkpoint);
    }
    PROLONG_LOG(INFO) << "saved " << *saved << " in "
                      << absl::StrFormat("%.2f", absl::ToDoubleSeconds(absl::Now() - save_start))
                      << " s";
  } else {
    newest_checkpoint =
        absl::StrCat(options.checkpoint_dir, "/", checkpoint::StepDirName(trainer->steps()));
  }
  metrics.checkpoints->Increment();
  metrics.last_checkpoint_step->Set(static_cast<double>(global_step));
  return absl::OkStatus();
}

}  // namespace prolong::worker
