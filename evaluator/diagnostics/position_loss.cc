#include "evaluator/diagnostics/position_loss.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "datamixer/store/store.h"
#include "evaluator/generate/inference_model.h"
#include "evaluator/generate/kv_cache.h"
#include "torch/torch.h"
#include "trainer/model/llama.h"

namespace prolong::evaluator::diagnostics {
namespace {

using torch::Tensor;

// Positions whose logits exist at once.
constexpr int64_t kLogitBlock = 1024;

absl::Status CheckOptions(const PositionLossOptions& options) {
  if (options.domain.empty()) return absl::InvalidArgumentError("domain is empty");
  for (const auto& [name, value] :
       {std::pair<const char*, int64_t>{"max_documents", options.max_documents},
        {"max_length", options.max_length},
        {"bucket_tokens", options.bucket_tokens},
        {"chunk_tokens", options.chunk_tokens}}) {
    if (value < 1)
      return absl::InvalidArgumentError(absl::StrCat(name, " must be >= 1, got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PositionLoss> MeasurePositionLoss(model::LlamaForCausalLM& model,
                                                 const store::Shard& shard,
                                                 const PositionLossOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  std::vector<store::IndexEntry> documents;
  RETURN_IF_ERROR(shard.ScanIndex(options.domain, [&](const store::IndexEntry& entry) {
    if (static_cast<int64_t>(documents.size()) < options.max_documents) documents.push_back(entry);
  }));
  if (documents.empty()) {
    return absl::NotFoundError(absl::StrCat("domain '", options.domain, "' has no documents"));
  }

  torch::NoGradGuard no_grad;
  const Tensor weight = model.lm_head_weight();
  const torch::Device device = weight.device();
  const int64_t vocab = model.config().vocab_size;
  // Bucket b holds the predictions of the tokens at positions [b x bucket_tokens, ...).
  const int64_t buckets = (options.max_length + options.bucket_tokens - 1) / options.bucket_tokens;
  std::vector<double> sums(buckets, 0);
  std::vector<int64_t> counts(sums.size(), 0);
  generate::KvCache cache(model.config(), 1, options.max_length, device, weight.scalar_type());
  cache.Attach(model);
  struct RestoreCores {
    model::LlamaForCausalLM& model;
    ~RestoreCores() { model.SetAttentionCore(model::DefaultAttentionCore); }
  } restore{model};

  for (const store::IndexEntry& document : documents) {
    const int64_t length = std::min(document.length, options.max_length);
    ASSIGN_OR_RETURN(const std::vector<uint32_t> tokens,
                     shard.ReadTokens(options.domain, document.id, 0, length));
    std::vector<int64_t> ids(tokens.begin(), tokens.end());
    for (int64_t id : ids) {
      if (id >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat("document ", store::HexId(document.id), " (", document.source,
                         ") has token id ", id, ", outside the model's vocabulary of ", vocab,
                         ": the store was tokenized for another "
                         "model"));
      }
    }
    const Tensor all = torch::tensor(ids, torch::kInt64).to(device);
    for (int64_t first = 0; first + 1 < length; first += options.chunk_tokens) {
      const int64_t count = std::min(options.chunk_tokens, length - first);
      cache.SetStep({{0, first, count}});
      const Tensor hidden = model.forward(all.narrow(0, first, count),
                                          {torch::zeros({count}, all.options()),
                                           torch::arange(first, first + count, all.options())});
      // Position p predicts token p + 1; the document's last token predicts nothing.
      const int64_t predictions = std::min(count, length - 1 - first);
      for (int64_t begin = 0; begin < predictions; begin += kLogitBlock) {
        const int64_t end = std::min(predictions, begin + kLogitBlock);
        const Tensor log_probs =
            model.Logits(hidden, begin, end).to(torch::kFloat32).log_softmax(-1);
        const Tensor targets = all.narrow(0, first + begin + 1, end - begin).unsqueeze(1);
        const Tensor losses = (-log_probs.gather(1, targets)).squeeze(1).to(torch::kFloat64).cpu();
        const double* loss = losses.data_ptr<double>();
        for (int64_t i = 0; i < end - begin; ++i) {
          const int64_t target = first + begin + i + 1;
          const size_t bucket = static_cast<size_t>(target / options.bucket_tokens);
          sums[bucket] += loss[i];
          ++counts[bucket];
        }
      }
    }
  }

  PositionLoss result;
  result.documents = static_cast<int64_t>(documents.size());
  for (size_t b = 0; b < sums.size(); ++b) {
    PositionBucket bucket;
    bucket.begin = static_cast<int64_t>(b) * options.bucket_tokens;
    bucket.end = std::min<int64_t>(bucket.begin + options.bucket_tokens, options.max_length);
    bucket.tokens = counts[b];
    bucket.mean_loss = counts[b] > 0 ? sums[b] / static_cast<double>(counts[b]) : 0;
    result.buckets.push_back(bucket);
  }
  return result;
}

absl::StatusOr<PositionLoss> MeasureCheckpointPositionLoss(const std::string& checkpoint,
                                                           const std::string& store_dir,
                                                           PositionLossOptions options,
                                                           const std::string& device) {
  ASSIGN_OR_RETURN(const std::unique_ptr<store::Store> store,
                   store::Store::OpenForReading(store_dir));
  ASSIGN_OR_RETURN(generate::InferenceModel loaded,
                   generate::LoadInferenceModel(checkpoint, device));
  if (options.max_length <= 0) options.max_length = loaded.model->config().max_position_embeddings;
  return MeasurePositionLoss(*loaded.model, store->shard(), options);
}

}  // namespace prolong::evaluator::diagnostics
