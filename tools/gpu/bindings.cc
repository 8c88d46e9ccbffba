// The trainer core as a Python extension, for tools/gpu/check.py to compare with PyTorch and
// transformers on a GPU machine (built there with torch.utils.cpp_extension).

#include <torch/extension.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "evaluator/generate/generator.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/attention/fused_attention.h"
#include "trainer/attention/partial_attention.h"
#include "trainer/attention/varlen_plan.h"
#include "trainer/comm/communicator.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/llama_config.h"
#include "trainer/parallel/activation_checkpointing.h"
#include "trainer/parallel/autocast_guard.h"
#include "trainer/parallel/parallelize.h"
#include "trainer/train/memory_plan.h"
#include "trainer/train/trainer.h"

namespace {

namespace attention = prolong::attention;
namespace model = prolong::model;

template <typename T>
T OrThrow(absl::StatusOr<T> value) {
  if (!value.ok()) throw std::runtime_error(std::string(value.status().message()));
  return *std::move(value);
}

void OrThrow(const absl::Status& status) {
  if (!status.ok()) throw std::runtime_error(std::string(status.message()));
}

// Documents of `lengths` tokens laid end to end, on the CPU.
attention::TokenLayout PackedLayout(const std::vector<int64_t>& lengths) {
  std::vector<torch::Tensor> documents, positions;
  for (size_t d = 0; d < lengths.size(); ++d) {
    documents.push_back(torch::full({lengths[d]}, static_cast<int64_t>(d), torch::kInt64));
    positions.push_back(torch::arange(lengths[d], torch::kInt64));
  }
  return {torch::cat(documents), torch::cat(positions)};
}

py::tuple AttentionForward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& document, const torch::Tensor& position,
                           double scale) {
  const attention::AttentionResult result = attention::BlockwiseAttentionForward(
      q, k, v, {document, position}, {document, position}, scale);
  return py::make_tuple(result.out, result.lse);
}

py::tuple AttentionBackward(const torch::Tensor& dout, const torch::Tensor& q,
                            const torch::Tensor& k, const torch::Tensor& v,
                            const torch::Tensor& out, const torch::Tensor& lse,
                            const torch::Tensor& document, const torch::Tensor& position,
                            double scale) {
  const attention::AttentionGrads grads = attention::BlockwiseAttentionBackward(
      dout, q, k, v, out, lse, {document, position}, {document, position}, scale);
  return py::make_tuple(grads.dq, grads.dk, grads.dv);
}

#ifdef PROLONG_CUDA
attention::FusedKernel KernelNamed(const std::string& name) {
  return OrThrow(attention::ParseFusedKernel(name));
}

torch::Tensor FusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& document, const torch::Tensor& position,
                             double scale, const std::string& kernel) {
  return attention::FusedDocumentAttention(q, k, v, {document, position}, scale,
                                           KernelNamed(kernel));
}

// The all-gather scheme's local attention on a GPU: q against gathered keys in any order.
torch::Tensor GatheredKeysAttention(const torch::Tensor& q, const torch::Tensor& k,
                                    const torch::Tensor& v, const torch::Tensor& q_document,
                                    const torch::Tensor& q_position,
                                    const torch::Tensor& k_document,
                                    const torch::Tensor& k_position, double scale) {
  return attention::AttendKeys(q, k, v, {q_document, q_position}, {k_document, k_position}, scale,
                               attention::FlashPartialAttention());
}

#endif

// How many varlen kernel calls attend q's tokens to those keys; -1 when there is no plan (and
// FlashPartialAttention falls back to the blockwise implementation).
int64_t VarlenCalls(const torch::Tensor& q_document, const torch::Tensor& q_position,
                    const torch::Tensor& k_document, const torch::Tensor& k_position) {
  auto values = [](const torch::Tensor& t) {
    const torch::Tensor cpu = t.to(torch::kCPU, torch::kInt64).contiguous();
    return std::vector<int64_t>(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + cpu.numel());
  };
  const std::optional<attention::VarlenPlan> plan = attention::PlanVarlenAttention(
      values(q_document), values(q_position), values(k_document), values(k_position));
  return plan.has_value() ? static_cast<int64_t>(plan->calls.size()) : -1;
}

#ifdef PROLONG_CUDA
// The ring scheme's arithmetic with `ranks` ranks simulated on one GPU, without communication:
// each rank's zigzag chunks attend to every rank's block through FlashPartialAttention, the
// parts merged by log-sum-exp, then each block's backward with the merged out and lse, the
// gradients summed where the ring would sum them. Returns out, dq, dk, dv of the whole sequence
// and whether every (rank, block) pair had a varlen plan (else the blockwise fallback ran).
py::tuple RingBlocksAttention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& dout,
                              const torch::Tensor& document, const torch::Tensor& position,
                              double scale, int64_t ranks) {
  const attention::PartialAttention& flash = attention::FlashPartialAttention();
  const int64_t tokens = q.size(0);
  auto rank_rows = [&](int64_t r) {
    auto chunk = [&](int64_t c) {
      return torch::arange(c * tokens / (2 * ranks), (c + 1) * tokens / (2 * ranks), q.device());
    };
    return torch::cat({chunk(r), chunk(2 * ranks - 1 - r)});
  };
  auto layout_of = [&](const torch::Tensor& rows) {
    return attention::TokenLayout{document.index_select(0, rows), position.index_select(0, rows)};
  };
  torch::Tensor out = torch::empty_like(q);
  torch::Tensor dq = torch::zeros(q.sizes(), q.options().dtype(torch::kFloat));
  torch::Tensor dk = torch::zeros(k.sizes(), k.options().dtype(torch::kFloat));
  torch::Tensor dv = torch::zeros(v.sizes(), v.options().dtype(torch::kFloat));
  bool planned = true;
  for (int64_t r = 0; r < ranks; ++r) {
    const torch::Tensor rows = rank_rows(r);
    const torch::Tensor q_rank = q.index_select(0, rows);
    const attention::TokenLayout q_layout = layout_of(rows);
    std::optional<attention::AttentionResult> merged;
    for (int64_t owner = 0; owner < ranks; ++owner) {
      const torch::Tensor block = rank_rows(owner);
      const attention::TokenLayout k_layout = layout_of(block);
      planned = planned && VarlenCalls(q_layout.document, q_layout.position, k_layout.document,
                                       k_layout.position) >= 0;
      attention::AttentionResult part = flash.Forward(
          q_rank, k.index_select(0, block), v.index_select(0, block), q_layout, k_layout, scale);
      merged = merged ? attention::MergePartialAttention(*merged, part) : std::move(part);
    }
    const torch::Tensor out_rank = merged->out.to(q.scalar_type());
    out.index_copy_(0, rows, out_rank);
    for (int64_t owner = 0; owner < ranks; ++owner) {
      const torch::Tensor block = rank_rows(owner);
      const attention::AttentionGrads grads = flash.Backward(
          dout.index_select(0, rows), q_rank, k.index_select(0, block), v.index_select(0, block),
          out_rank, merged->lse, q_layout, layout_of(block), scale);
      dq.index_add_(0, rows, grads.dq.to(torch::kFloat));
      dk.index_add_(0, block, grads.dk.to(torch::kFloat));
      dv.index_add_(0, block, grads.dv.to(torch::kFloat));
    }
  }
  return py::make_tuple(out, dq, dk, dv, planned);
}
#endif

// Logits (float32, on the CPU) of a packed sequence through a checkpoint directory's model, with
// `precision` fp32, bf16 (bf16 weights) or autocast (float32 weights, the trainer's bf16 mixed
// precision).
torch::Tensor LlamaLogits(const std::string& dir, const torch::Tensor& input_ids,
                          const torch::Tensor& document, const torch::Tensor& position,
                          const std::string& device, const std::string& precision, bool fused) {
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::LoadLlama(dir));
  const torch::Device target(device);
  llama->to(target, precision == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  const prolong::parallel::AutocastGuard autocast(target.type(), precision == "autocast");
#ifdef PROLONG_CUDA
  if (fused) llama->SetAttentionCore(attention::FusedAttentionCore());
#else
  if (fused) throw std::runtime_error("the fused core needs a CUDA build");
#endif
  torch::NoGradGuard no_grad;
  const torch::Tensor hidden =
      llama->forward(input_ids.to(target), {document.to(target), position.to(target)});
  return llama->Logits(hidden, 0, hidden.size(0)).to(torch::kFloat32).cpu();
}

// The autograd node our RMSNorm leaves for a GPU input in `dtype` ("fp32" or "bf16"):
// FusedRmsNormBackward0 where PyTorch's fused kernel runs.
std::string RmsNormBackwardNode(const std::string& dtype) {
  const torch::ScalarType type = dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  model::RMSNorm norm(4096, 1e-5);
  norm.to(torch::kCUDA, type);
  const torch::Tensor x =
      torch::randn({8, 4096}, torch::TensorOptions(torch::kCUDA).dtype(type)).requires_grad_();
  return norm.forward(x).grad_fn()->name();
}

void SaveRandomLlama(const std::string& config_path, const std::string& dir, int64_t seed) {
  const model::LlamaConfig config = OrThrow(model::ReadLlamaConfig(config_path));
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::CreateLlama(config, seed));
  OrThrow(model::SaveLlama(*llama, dir, {}));
}

#ifdef PROLONG_CUDA
// One rank of NCCL: every collective on a GPU tensor must give back its input.
py::dict NcclCheck() {
  py::dict result;
  auto store = OrThrow(prolong::comm::ServeStore("127.0.0.1"));
  prolong::comm::RendezvousOptions options;
  options.store_address = store->address();
  prolong::comm::ProcessGroups groups = OrThrow(prolong::comm::JoinNccl(options));
  const torch::Tensor x =
      torch::arange(12, torch::TensorOptions(torch::kCUDA).dtype(torch::kFloat32)).view({4, 3});
  torch::Tensor reduced = x.clone();
  groups.world->AllReduceSum(reduced);
  result["all_reduce"] = torch::equal(reduced, x);
  result["all_gather"] = torch::equal(groups.cp->AllGather(x), x);
  result["reduce_scatter"] = torch::equal(groups.dp->ReduceScatterSum(x), x);
  result["all_to_all"] = torch::equal(groups.cp->AllToAll(x), x);
  // The trainer's CPU tensors (counts, flags, the loss) are staged through the GPU and back.
  const torch::Tensor counts = torch::tensor({3, 5}, torch::kInt64);
  const torch::Tensor gathered = groups.world->AllGather(counts);
  result["cpu_all_gather"] = gathered.device().is_cpu() && torch::equal(gathered, counts);
  torch::Tensor loss = torch::tensor({2.5}, torch::kFloat64);
  groups.world->AllReduceSum(loss);
  result["cpu_all_reduce"] = loss.device().is_cpu() && loss.item<double>() == 2.5;
  groups.world->Barrier();
  result["barrier"] = true;
  return result;
}

// Seconds of forward + backward of one decoder layer with `config_path`'s shape, bf16, through
// the fused core's `kernel`, per step of `steps` (each a packing's document lengths), with
// `checkpointing` "none", "full" (the layer recomputed in backward, as the Trainer's activation
// checkpointing does) or "selective" (the recomputation replays the attention output where the
// kernel allows it). Each step is timed on its own, the GPU synchronized around it.
std::vector<double> LayerSeconds(const std::string& config_path,
                                 const std::vector<std::vector<int64_t>>& steps,
                                 const std::string& kernel, const std::string& checkpointing) {
  if (checkpointing != "none" && checkpointing != "full" && checkpointing != "selective") {
    throw std::invalid_argument("checkpointing must be none, full or selective, got " +
                                checkpointing);
  }
  const model::LlamaConfig config = OrThrow(model::ReadLlamaConfig(config_path));
  auto layer = std::make_shared<model::LlamaDecoderLayer>(config);
  layer->self_attn->set_core(attention::FusedAttentionCore(KernelNamed(kernel)));
  const torch::TensorOptions cuda = torch::TensorOptions(torch::kCUDA);
  layer->to(torch::kCUDA, torch::kBFloat16);
  model::RotaryEmbedding rope(config);
  rope.to(torch::kCUDA);
  std::vector<double> seconds;
  // The autograd engine runs its own threads; Python's lock must not be held meanwhile.
  py::gil_scoped_release no_gil;
  for (const std::vector<int64_t>& lengths : steps) {
    const attention::TokenLayout packed = PackedLayout(lengths);
    const attention::TokenLayout layout{packed.document.to(torch::kCUDA),
                                        packed.position.to(torch::kCUDA)};
    const auto [cos, sin] = rope.forward(layout.position, torch::kBFloat16);
    const torch::Tensor x =
        torch::randn({layout.document.numel(), config.hidden_size}, cuda.dtype(torch::kBFloat16))
            .requires_grad_();
    const torch::Tensor grad = torch::randn_like(x);
    torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor y =
        checkpointing == "none"
            ? layer->forward(x, cos, sin, layout)
            : prolong::parallel::CheckpointedLayer(*layer, x, cos, sin, layout,
                                                   /*keep_attention=*/checkpointing == "selective");
    y.backward(grad);
    torch::cuda::synchronize();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return seconds;
}

// The Trainer's plan for the whole-model step below: bf16 mixed precision, full activation
// checkpointing, sharded weights over one rank, one micro-batch of `tokens` on a GPU.
prolong::parallel::ParallelPlan WholeModelPlan() {
  prolong::parallel::ParallelPlan plan;
  plan.precision = prolong::parallel::Precision::kBf16;
  plan.activation_checkpointing = prolong::parallel::ActivationCheckpointing::kFull;
  plan.shard_weights = true;
  return plan;
}

model::LlamaConfig WithLayers(const std::string& config_path, int64_t layers) {
  model::LlamaConfig config = OrThrow(model::ReadLlamaConfig(config_path));
  config.num_hidden_layers = layers;
  return config;
}

// --plan-memory's peak for WholeModelSeconds' run.
int64_t PlannedPeakBytes(const std::string& config_path, int64_t layers, int64_t tokens) {
  prolong::train::MemoryLayout layout;
  layout.seq_len = tokens;
  layout.plan = WholeModelPlan();
  layout.gpu = true;
  return OrThrow(prolong::train::PlanMemory(WithLayers(config_path, layers), layout)).peak();
}

// The whole training step (embedding, `layers` decoder layers of `config_path`'s shape, lm_head
// and the blocked loss, AdamW) through the Trainer on this GPU, one rank of NCCL, under
// WholeModelPlan, one step per entry of `steps` (a packing's document lengths): the seconds of
// each step, the GPU synchronized around it, and the peak device memory.
py::dict WholeModelSeconds(const std::string& config_path, int64_t layers,
                           const std::vector<std::vector<int64_t>>& steps) {
  const model::LlamaConfig config = WithLayers(config_path, layers);
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::CreateLlama(config, 1));
  auto store = OrThrow(prolong::comm::ServeStore("127.0.0.1"));
  prolong::comm::RendezvousOptions options;
  options.store_address = store->address();
  prolong::comm::ProcessGroups groups = OrThrow(prolong::comm::JoinNccl(options));
  prolong::train::TrainerOptions trainer_options;
  trainer_options.parallel = WholeModelPlan();
  prolong::train::LrSchedule schedule;
  schedule.peak_lr = 1e-5;
  schedule.steps = static_cast<int64_t>(steps.size());
  std::unique_ptr<prolong::train::Trainer> trainer = OrThrow(prolong::train::Trainer::Create(
      OrThrow(prolong::parallel::Parallelize(llama, &groups, trainer_options.parallel,
                                             torch::Device(torch::kCUDA))),
      trainer_options, schedule));
  std::vector<double> seconds;
  int64_t peak = 0;
  {
    // The autograd engine runs its own threads; Python's lock must not be held meanwhile.
    py::gil_scoped_release no_gil;
    for (const std::vector<int64_t>& lengths : steps) {
      prolong::train::StepInput input;
      prolong::train::MicroBatch batch;
      batch.layout = PackedLayout(lengths);
      const torch::Tensor& document = batch.layout.document;
      batch.input_ids = torch::randint(config.vocab_size, {document.numel()}, torch::kInt64);
      batch.loss_mask =
          torch::cat({document.slice(0, 1), torch::full({1}, -1, torch::kInt64)}) == document;
      batch.target_ids = torch::roll(batch.input_ids, -1).masked_fill(~batch.loss_mask, 0);
      input.global_target_tokens = batch.loss_mask.sum().item<int64_t>();
      input.micro_batches.push_back(std::move(batch));
      torch::cuda::synchronize();
      const auto start = std::chrono::steady_clock::now();
      const prolong::train::StepMetrics metrics = OrThrow(trainer->Step(input));
      torch::cuda::synchronize();
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      peak = std::max(peak, metrics.peak_device_bytes);
    }
  }
  py::dict result;
  result["seconds_per_step"] = seconds;
  result["peak_device_bytes"] = peak;
  return result;
}
#endif  // PROLONG_CUDA

// The same `steps` global batches for every call: micro-batches of packed documents with random
// ids below `vocab`, the last token of each document without a target.
std::vector<prolong::train::StepInput> TrainingBatches(int64_t vocab, int steps) {
  torch::manual_seed(11);
  const std::vector<std::vector<int64_t>> micro_batch_documents = {{100, 3, 153}, {256}};
  std::vector<prolong::train::StepInput> inputs(steps);
  for (prolong::train::StepInput& input : inputs) {
    for (const std::vector<int64_t>& lengths : micro_batch_documents) {
      prolong::train::MicroBatch batch;
      batch.layout = PackedLayout(lengths);
      const torch::Tensor& document = batch.layout.document;
      const int64_t tokens = document.numel();
      batch.input_ids = torch::randint(vocab, {tokens}, torch::kInt64);
      // A token has a target when the next one is of its document.
      batch.loss_mask =
          torch::cat({document.slice(0, 1), torch::full({1}, -1, torch::kInt64)}) == document;
      batch.target_ids = torch::roll(batch.input_ids, -1).masked_fill(~batch.loss_mask, 0);
      input.global_target_tokens += batch.loss_mask.sum().item<int64_t>();
      input.micro_batches.push_back(std::move(batch));
    }
  }
  return inputs;
}

// `steps` optimizer steps of the model in `dir` (float32 weights) on `device` through the
// Trainer: fp32 or bf16 autocast, per-layer activation checkpointing, the blockwise attention
// core or (`kernel` not empty) the fused one; on a GPU with a one-rank NCCL group, so the
// gradient buckets, the loss and the token counts go through the communicator. Returns the
// losses, gradient norms and the peak device memory.
py::dict TrainSteps(const std::string& dir, const std::string& device, const std::string& precision,
                    const std::string& kernel, int steps) {
  namespace parallel = prolong::parallel;
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::LoadLlama(dir));
  const torch::Device target(device);
  std::unique_ptr<prolong::comm::StoreServer> store;
  prolong::comm::ProcessGroups groups;
  prolong::comm::ProcessGroups* gang = nullptr;
#ifdef PROLONG_CUDA
  if (target.is_cuda()) {
    store = OrThrow(prolong::comm::ServeStore("127.0.0.1"));
    prolong::comm::RendezvousOptions options;
    options.store_address = store->address();
    groups = OrThrow(prolong::comm::JoinNccl(options));
    gang = &groups;
  }
#endif
  prolong::train::LrSchedule schedule;
  schedule.peak_lr = 1e-3;
  schedule.steps = steps;
  prolong::train::TrainerOptions options;
  options.parallel.activation_checkpointing = parallel::ActivationCheckpointing::kFull;
  options.parallel.precision =
      precision == "autocast" ? parallel::Precision::kBf16 : parallel::Precision::kFp32;
  if (!kernel.empty())
    options.parallel.gpu_attention = OrThrow(attention::ParseFusedKernel(kernel));
  if (!kernel.empty() && !target.is_cuda()) {
    throw std::runtime_error("the fused core needs a GPU");
  }
  parallel::ParallelModel parallelized =
      OrThrow(parallel::Parallelize(llama, gang, options.parallel, target));
  // No kernel named: the blockwise core on any device, the reference for the fused ones.
  if (kernel.empty()) llama->SetAttentionCore(model::DefaultAttentionCore);
  std::unique_ptr<prolong::train::Trainer> trainer =
      OrThrow(prolong::train::Trainer::Create(std::move(parallelized), options, schedule));
  std::vector<prolong::train::StepMetrics> metrics;
  {
    // The autograd engine runs its own threads; Python's lock must not be held meanwhile.
    py::gil_scoped_release no_gil;
    for (const prolong::train::StepInput& input :
         TrainingBatches(llama->config().vocab_size, steps)) {
      metrics.push_back(OrThrow(trainer->Step(input)));
    }
  }
  py::list losses, grad_norms;
  for (const prolong::train::StepMetrics& step : metrics) {
    losses.append(step.loss);
    grad_norms.append(step.grad_norm);
  }
  py::dict result;
  result["losses"] = losses;
  result["grad_norms"] = grad_norms;
  result["peak_device_bytes"] = metrics.back().peak_device_bytes;
  return result;
}

// Greedy generation through the evaluator's Generator (KV cache, chunked prefill, batched
// decoding) from the model in `dir` on `device` in `dtype` ("fp32" or "bf16"): each prompt's new
// tokens (an EOS id of config.json ends one and is left out), and the prefill and decode
// figures.
py::dict GenerateGreedy(const std::string& dir, const std::vector<std::vector<int64_t>>& prompts,
                        int64_t max_new_tokens, const std::string& device, const std::string& dtype,
                        int64_t prefill_chunk) {
  namespace generate = prolong::evaluator::generate;
  std::shared_ptr<model::LlamaForCausalLM> llama = OrThrow(model::LoadLlama(dir));
  llama->to(torch::Device(device), dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32);
  llama->eval();
  generate::GeneratorOptions options;
  options.prefill_chunk = prefill_chunk;
  options.max_batch = static_cast<int64_t>(prompts.size());
  options.allow_beyond_max_length = true;
  std::unique_ptr<generate::Generator> generator =
      OrThrow(generate::Generator::Create(llama, options));
  std::vector<generate::GenerationRequest> requests;
  for (const std::vector<int64_t>& prompt : prompts) {
    generate::GenerationRequest request;
    request.prompt = prompt;
    request.max_new_tokens = max_new_tokens;
    requests.push_back(std::move(request));
  }
  std::vector<generate::Generation> generations;
  {
    py::gil_scoped_release no_gil;
    generations = OrThrow(generator->Generate(requests));
  }
  py::list tokens;
  for (const generate::Generation& generation : generations) tokens.append(generation.tokens);
  const generate::GenerationStats& stats = generator->stats();
  py::dict result;
  result["tokens"] = tokens;
  result["prefill_tokens"] = stats.prefill_tokens;
  result["prefill_seconds"] = stats.prefill_seconds;
  result["decode_tokens"] = stats.decode_tokens;
  result["decode_seconds"] = stats.decode_seconds;
  return result;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attention_forward", &AttentionForward);
  m.def("attention_backward", &AttentionBackward);
  m.def("llama_logits", &LlamaLogits);
  m.def("save_random_llama", &SaveRandomLlama);
  m.def("rms_norm_backward_node", &RmsNormBackwardNode);
  m.def("train_steps", &TrainSteps);
  m.def("generate_greedy", &GenerateGreedy);
  m.def("varlen_calls", &VarlenCalls);
#ifdef PROLONG_CUDA
  m.def("fused_attention", &FusedAttention);
  m.def("gathered_keys_attention", &GatheredKeysAttention);
  m.def("ring_blocks_attention", &RingBlocksAttention);
  m.def("nccl_check", &NcclCheck);
  m.def("layer_seconds", &LayerSeconds);
  m.def("planned_peak_bytes", &PlannedPeakBytes);
  m.def("whole_model_seconds", &WholeModelSeconds);
#endif
}
