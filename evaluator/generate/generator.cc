#include "evaluator/generate/generator.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "evaluator/generate/kv_cache.h"
#include "torch/torch.h"

namespace prolong::evaluator::generate {
namespace {

using torch::Tensor;

// The next token from one request's float32 logits [vocab].
int64_t NextToken(const Tensor& logits, const Sampling& sampling, at::Generator& random) {
  if (sampling.temperature == 0) return logits.argmax().item<int64_t>();
  const Tensor probabilities =
      torch::softmax(logits.to(torch::kFloat64) / sampling.temperature, -1);
  if (sampling.top_p >= 1) {
    return torch::multinomial(probabilities, 1, /*replacement=*/false, random).item<int64_t>();
  }
  const auto [sorted, order] = probabilities.sort(/*dim=*/-1, /*descending=*/true);
  // Keep a token while the mass before it is under top_p: the token that reaches it stays.
  const Tensor kept = sorted * ((sorted.cumsum(-1) - sorted) < sampling.top_p);
  const int64_t choice = torch::multinomial(kept, 1, /*replacement=*/false, random).item<int64_t>();
  return order[choice].item<int64_t>();
}

// One request of a batch as it is decoded.
struct Slot {
  size_t request = 0;
  int64_t length = 0;  // tokens in the cache
  int64_t last = 0;    // the newest token, not in the cache yet
  bool done = false;
  Generation generation;
  at::Generator random;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(
    std::shared_ptr<model::LlamaForCausalLM> model, const GeneratorOptions& options,
    Decoder decoder) {
  if (model == nullptr) return absl::InvalidArgumentError("model is null");
  if (options.prefill_chunk < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill_chunk must be >= 1, got ", options.prefill_chunk));
  }
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch must be >= 1, got ", options.max_batch));
  }
  GeneratorOptions resolved = options;
  if (resolved.eos_ids.empty()) resolved.eos_ids = model->config().eos_token_ids;
  for (int64_t id : resolved.eos_ids) {
    if (id < 0 || id >= model->config().vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "eos id ", id, " is outside the vocabulary of ", model->config().vocab_size));
    }
  }
  return std::unique_ptr<Generator>(new Generator(std::move(model), resolved, std::move(decoder)));
}

Generator::Generator(std::shared_ptr<model::LlamaForCausalLM> model,
                     const GeneratorOptions& options, Decoder decoder)
    : model_(std::move(model)), options_(options), decoder_(std::move(decoder)) {}

absl::Status Generator::Check(const std::vector<GenerationRequest>& requests) const {
  const model::LlamaConfig& config = model_->config();
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    auto error = [&](auto&&... parts) {
      return absl::InvalidArgumentError(absl::StrCat("requests[", i, "]: ", parts...));
    };
    if (r.prompt.empty()) return error("the prompt is empty");
    for (int64_t id : r.prompt) {
      if (id < 0 || id >= config.vocab_size) {
        return error("prompt id ", id, " is outside the vocabulary of ", config.vocab_size);
      }
    }
    if (r.max_new_tokens < 0) return error("max_new_tokens must be >= 0, got ", r.max_new_tokens);
    const int64_t total = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens;
    if (total > config.max_position_embeddings && !options_.allow_beyond_max_length) {
      return error("the prompt's ", r.prompt.size(), " tokens plus max_new_tokens ",
                   r.max_new_tokens, " exceed the model's maximum length ",
                   config.max_position_embeddings, " (truncate the input, or allow going beyond)");
    }
    if (!r.stop_strings.empty() && decoder_ == nullptr) {
      return error("stop strings need a decoder (the tokenizer) to read the generated text");
    }
    if (!(r.sampling.temperature >= 0 && std::isfinite(r.sampling.temperature))) {
      return error("sampling.temperature must be finite and >= 0, got ", r.sampling.temperature);
    }
    if (!(r.sampling.top_p > 0 && r.sampling.top_p <= 1)) {
      return error("sampling.top_p must be in (0, 1], got ", r.sampling.top_p);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Generation>> Generator::Generate(
    const std::vector<GenerationRequest>& requests, const OnDone& on_done) {
  RETURN_IF_ERROR(Check(requests));
  std::vector<Generation> out(requests.size());
  // The cache's cores capture it; the default core comes back however Generate ends.
  struct RestoreCores {
    model::LlamaForCausalLM& model;
    ~RestoreCores() { model.SetAttentionCore(model::DefaultAttentionCore); }
  } restore{*model_};
  for (size_t begin = 0; begin < requests.size();
       begin += static_cast<size_t>(options_.max_batch)) {
    const size_t end = std::min(requests.size(), begin + static_cast<size_t>(options_.max_batch));
    GenerateBatch(requests, begin, end, out, on_done);
  }
  return out;
}

void Generator::GenerateBatch(const std::vector<GenerationRequest>& requests, size_t begin,
                              size_t end, std::vector<Generation>& out, const OnDone& on_done) {
  torch::NoGradGuard no_grad;
  model::LlamaForCausalLM& model = *model_;
  const Tensor weight = model.lm_head_weight();
  const torch::Device device = weight.device();
  const auto ids_on_device = torch::TensorOptions().dtype(torch::kInt64).device(device);
  int64_t capacity = 1;
  for (size_t i = begin; i < end; ++i) {
    capacity = std::max<int64_t>(
        capacity, static_cast<int64_t>(requests[i].prompt.size()) + requests[i].max_new_tokens);
  }
  KvCache cache(model.config(), static_cast<int64_t>(end - begin), capacity, device,
                weight.scalar_type());
  cache.Attach(model);

  std::vector<Slot> slots(end - begin);
  // Takes slot s's next token: stops it, or makes the token the one to feed next.
  auto accept = [&](Slot& slot, int64_t token) {
    const GenerationRequest& request = requests[slot.request];
    Generation& generation = slot.generation;
    if (std::find(options_.eos_ids.begin(), options_.eos_ids.end(), token) !=
        options_.eos_ids.end()) {
      generation.stop_reason = StopReason::kEos;
      slot.done = true;
    } else {
      generation.tokens.push_back(token);
      slot.last = token;
      if (!request.stop_strings.empty()) {
        const std::string text = decoder_(generation.tokens);
        for (const std::string& stop : request.stop_strings) {
          if (!stop.empty() && text.find(stop) != std::string::npos) {
            generation.stop_reason = StopReason::kStopString;
            slot.done = true;
          }
        }
      }
      if (!slot.done && static_cast<int64_t>(generation.tokens.size()) >= request.max_new_tokens) {
        generation.stop_reason = StopReason::kLength;
        slot.done = true;
      }
    }
    if (slot.done) {
      out[slot.request] = generation;
      if (on_done) on_done(slot.request, generation);
    }
  };

  // Prefill, one prompt at a time in chunks; the last chunk's last logits give the first token.
  const absl::Time prefill_start = absl::Now();
  for (size_t s = 0; s < slots.size(); ++s) {
    Slot& slot = slots[s];
    slot.request = begin + s;
    const GenerationRequest& request = requests[slot.request];
    slot.random = at::detail::createCPUGenerator(request.sampling.seed);
    const int64_t prompt = static_cast<int64_t>(request.prompt.size());
    Tensor logits;
    for (int64_t first = 0; first < prompt; first += options_.prefill_chunk) {
      const int64_t count = std::min(options_.prefill_chunk, prompt - first);
      cache.SetStep({{static_cast<int64_t>(s), first, count}});
      const Tensor ids = torch::tensor(std::vector<int64_t>(request.prompt.begin() + first,
                                                            request.prompt.begin() + first + count),
                                       torch::kInt64)
                             .to(device);
      const attention::TokenLayout layout{
          torch::full({count}, static_cast<int64_t>(s), ids_on_device),
          torch::arange(first, first + count, ids_on_device)};
      const Tensor hidden = model.forward(ids, layout);
      if (first + count == prompt) logits = model.Logits(hidden, count - 1, count)[0];
    }
    stats_.prefill_tokens += prompt;
    slot.length = prompt;
    if (request.max_new_tokens == 0) {
      slot.done = true;
      out[slot.request] = slot.generation;
      if (on_done) on_done(slot.request, slot.generation);
      continue;
    }
    accept(slot, NextToken(logits.to(torch::kFloat32).cpu(), request.sampling, slot.random));
  }
  stats_.prefill_seconds += absl::ToDoubleSeconds(absl::Now() - prefill_start);

  // Decode: one token of every unfinished request per pass.
  const absl::Time decode_start = absl::Now();
  while (true) {
    std::vector<size_t> active;
    std::vector<SlotRun> runs;
    std::vector<int64_t> tokens, slot_ids, positions;
    for (size_t s = 0; s < slots.size(); ++s) {
      if (slots[s].done) continue;
      active.push_back(s);
      runs.push_back({static_cast<int64_t>(s), slots[s].length, 1});
      tokens.push_back(slots[s].last);
      slot_ids.push_back(static_cast<int64_t>(s));
      positions.push_back(slots[s].length);
    }
    if (active.empty()) break;
    cache.SetStep(std::move(runs));
    const Tensor hidden = model.forward(torch::tensor(tokens, torch::kInt64).to(device),
                                        {torch::tensor(slot_ids, torch::kInt64).to(device),
                                         torch::tensor(positions, torch::kInt64).to(device)});
    const int64_t count = static_cast<int64_t>(active.size());
    const Tensor logits = model.Logits(hidden, 0, count).to(torch::kFloat32).cpu();
    stats_.decode_tokens += count;
    for (int64_t i = 0; i < count; ++i) {
      Slot& slot = slots[active[i]];
      ++slot.length;
      accept(slot, NextToken(logits[i], requests[slot.request].sampling, slot.random));
    }
  }
  stats_.decode_seconds += absl::ToDoubleSeconds(absl::Now() - decode_start);
}

}  // namespace prolong::evaluator::generate
