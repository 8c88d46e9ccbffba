// CPU training-step throughput of prolong's trainer (one process), and the peak memory of its
// blockwise attention at one sequence length. tools/bench/train_step.sh runs it side by side
// with the same model and step written in PyTorch Python (train_step_reference.py).
//
//   train_step_benchmark --mode=step [--tokens=4096 --documents=4 --steps=5]
//                        [--checkpointing=none|full|selective]
//       prints one JSON line: {"tokens_per_second": ...}
//   train_step_benchmark --mode=attention --tokens=T
//       forward + backward of document-masked attention over T tokens (one document, 4 heads
//       of 64); prints {"tokens": T, "peak_rss_bytes": ...}

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/cli.h"
#include "common/log.h"
#include "tools/bench/bench_model.h"
#include "torch/torch.h"
#include "trainer/attention/blockwise_attention.h"
#include "trainer/model/llama.h"
#include "trainer/parallel/parallel_plan.h"
#include "trainer/parallel/parallelize.h"
#include "trainer/train/trainer.h"

namespace prolong {
namespace {

int64_t PeakRssBytes() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return int64_t{usage.ru_maxrss} * 1024;
}

int RunStep(int64_t tokens, int64_t documents, int steps, const std::string& checkpointing) {
  auto llama = model::CreateLlama(bench::BenchLlamaConfig(), 1);
  PROLONG_CHECK(llama.ok()) << llama.status();
  train::LrSchedule schedule;
  schedule.peak_lr = 1e-4;
  schedule.steps = steps + 1;
  schedule.shape = train::ScheduleShape::kConstant;
  schedule.warmup_fraction = 0;
  train::TrainerOptions options;
  using parallel::ActivationCheckpointing;
  options.parallel.activation_checkpointing =
      checkpointing == "none"   ? ActivationCheckpointing::kOff
      : checkpointing == "full" ? ActivationCheckpointing::kFull
                                : ActivationCheckpointing::kSelective;
  options.parallel.precision = parallel::Precision::kFp32;
  auto parallelized = parallel::Parallelize(*llama, nullptr, options.parallel, c10::kCPU);
  PROLONG_CHECK(parallelized.ok()) << parallelized.status();
  auto trainer = train::Trainer::Create(*std::move(parallelized), options, schedule);
  PROLONG_CHECK(trainer.ok()) << trainer.status();
  torch::manual_seed(2);
  std::vector<int64_t> cu_seqlens;
  for (int64_t d = 0; d <= documents; ++d) cu_seqlens.push_back(d * tokens / documents);
  train::MicroBatch micro;
  micro.input_ids = torch::randint(0, 32000, {tokens}, torch::kInt64);
  micro.target_ids = torch::roll(micro.input_ids, -1);
  micro.loss_mask = torch::ones({tokens}, torch::kBool);
  for (size_t d = 1; d < cu_seqlens.size(); ++d) micro.loss_mask[cu_seqlens[d] - 1] = false;
  micro.layout = *model::PackedLayout(cu_seqlens);
  train::StepInput input;
  input.micro_batches = {micro};
  input.global_target_tokens = micro.loss_mask.sum().item<int64_t>();
  PROLONG_CHECK((*trainer)->Step(input).ok());  // Warm-up.
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) PROLONG_CHECK((*trainer)->Step(input).ok());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"tokens_per_second\": %.1f, \"threads\": %d}\n", tokens * steps / seconds,
              torch::get_num_threads());
  return 0;
}

int RunAttention(int64_t tokens) {
  torch::manual_seed(3);
  auto make = [&](int64_t heads) { return torch::randn({tokens, heads, 64}).requires_grad_(); };
  const torch::Tensor q = make(4), k = make(2), v = make(2);
  const attention::TokenLayout layout{torch::zeros({tokens}, torch::kInt64),
                                      torch::arange(tokens, torch::kInt64)};
  const int64_t before = PeakRssBytes();
  attention::DocumentMaskedAttention(q, k, v, layout, layout, 0.125).sum().backward();
  std::printf("{\"tokens\": %ld, \"peak_rss_bytes\": %ld, \"rss_growth_bytes\": %ld}\n", tokens,
              PeakRssBytes(), PeakRssBytes() - before);
  return 0;
}

}  // namespace
}  // namespace prolong

int main(int argc, char** argv) {
  std::string mode = "step";
  int64_t tokens = 4096, documents = 4;
  int steps = 5;
  std::string checkpointing = "none";
  CLI::App app("CPU training-step throughput and attention memory.");
  prolong::ConfigureCli(app);
  app.add_option("--mode", mode, "step or attention")->check(CLI::IsMember({"step", "attention"}));
  app.add_option("--tokens", tokens, "Tokens in the packed sequence")->capture_default_str();
  app.add_option("--documents", documents, "Documents in it (step)")->capture_default_str();
  app.add_option("--steps", steps, "Timed steps (step)")->capture_default_str();
  app.add_option("--checkpointing", checkpointing,
                 "Activation checkpointing of the step: none, full or selective (attention kept)")
      ->check(CLI::IsMember({"none", "full", "selective"}))
      ->capture_default_str();
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;
  return mode == "step" ? prolong::RunStep(tokens, documents, steps, checkpointing)
                        : prolong::RunAttention(tokens);
}
