#include "trainer/attention/fused_attention.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "ATen/ATen.h"
#include "trainer/attention/hybrid_runs.h"
#include "trainer/attention/padded_length.h"
#include "trainer/attention/tensor_snapshot.h"
#include "trainer/attention/varlen_plan.h"

namespace prolong::attention {
namespace {

// Where each document begins, and the end: runs of equal layout.document in token order.
std::vector<int64_t> ReadDocumentBounds(const TokenLayout& layout) {
  const torch::Tensor documents = layout.document.to(torch::kCPU).contiguous();
  const int64_t* document = documents.data_ptr<int64_t>();
  const int64_t tokens = documents.numel();
  std::vector<int64_t> bounds = {0};
  for (int64_t i = 1; i < tokens; ++i) {
    if (document[i] != document[i - 1]) bounds.push_back(i);
  }
  if (tokens > 0) bounds.push_back(tokens);
  return bounds;
}

struct DocumentSplit {
  std::vector<int64_t> bounds;      // ReadDocumentBounds
  std::vector<HybridRun> runs;      // HybridRuns(bounds)
  std::vector<TokenLayout> slices;  // each run's slice of the layout; empty for a long document
};

// The same slices for every layer, so that the varlen plans made for them are reused.
DocumentSplit SplitDocuments(const TokenLayout& layout) {
  DocumentSplit split{ReadDocumentBounds(layout), {}, {}};
  split.runs = HybridRuns(split.bounds);
  for (const HybridRun& run : split.runs) {
    split.slices.push_back(run.long_document
                               ? TokenLayout{}
                               : TokenLayout{layout.document.narrow(0, run.begin, run.length),
                                             layout.position.narrow(0, run.begin, run.length)});
  }
  return split;
}

// SplitDocuments, kept for the latest layout: every layer of a micro-batch (and its
// recomputation) attends with the same layout tensors, and reading one from the GPU makes the
// CPU wait for everything queued before it.
std::shared_ptr<const DocumentSplit> KeptSplit(const TokenLayout& layout) {
  static std::mutex mutex;
  static auto* const kept = new std::pair<TensorSnapshot, std::shared_ptr<const DocumentSplit>>();
  const std::lock_guard<std::mutex> lock(mutex);
  if (!kept->first.Is(layout.document)) {
    *kept = {TensorSnapshot(layout.document),
             std::make_shared<const DocumentSplit>(SplitDocuments(layout))};
  }
  return kept->second;
}

// One kernel call per document: SDPA (K and V expanded unless kPerDocumentGqa) or cuDNN (K and V
// expanded, each document padded at its end to PaddedDocumentLength).
torch::Tensor PerDocumentAttention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const std::vector<int64_t>& bounds,
                                   double scale, FusedKernel kernel) {
  const bool native_gqa = kernel == FusedKernel::kPerDocumentGqa;
  const bool cudnn = kernel == FusedKernel::kPerDocumentCudnn;
  const int64_t groups = q.size(1) / k.size(1);
  const torch::Tensor keys = native_gqa ? k : k.repeat_interleave(groups, 1);
  const torch::Tensor values = native_gqa ? v : v.repeat_interleave(groups, 1);
  // [L, H, D] -> [1, H, padded, D] (the kernels want heads before tokens), zeros after the
  // document's last token. Made contiguous: PyTorch 2.11's kernels gave wrong gradients for
  // strided views here.
  auto heads_first = [](const torch::Tensor& x, int64_t begin, int64_t length, int64_t padded) {
    torch::Tensor piece = x.narrow(0, begin, length);
    if (padded > length) piece = at::constant_pad_nd(piece, {0, 0, 0, 0, 0, padded - length});
    return piece.transpose(0, 1).unsqueeze(0).contiguous();
  };
  std::vector<torch::Tensor> outputs;
  for (size_t d = 0; d + 1 < bounds.size(); ++d) {
    const int64_t begin = bounds[d], length = bounds[d + 1] - bounds[d];
    const int64_t padded = cudnn ? PaddedDocumentLength(length) : length;
    const torch::Tensor query = heads_first(q, begin, length, padded);
    const torch::Tensor key = heads_first(keys, begin, length, padded);
    const torch::Tensor value = heads_first(values, begin, length, padded);
    const torch::Tensor out =
        cudnn ? std::get<0>(at::_scaled_dot_product_cudnn_attention(
                    query, key, value, /*attn_bias=*/std::nullopt, /*compute_log_sumexp=*/true,
                    /*dropout_p=*/0.0, /*is_causal=*/true, /*return_debug_mask=*/false, scale))
              : at::scaled_dot_product_attention(query, key, value, /*attn_mask=*/std::nullopt,
                                                 /*dropout_p=*/0.0, /*is_causal=*/true, scale,
                                                 native_gqa);
    outputs.push_back(out.squeeze(0).transpose(0, 1).narrow(0, 0, length));
  }
  return torch::cat(outputs, 0);
}

bool HalfPrecision(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf;
}

torch::Tensor DeviceInt32(const std::vector<int64_t>& values, const torch::Device& device) {
  return torch::tensor(values, torch::kInt64).to(device, torch::kInt32);
}

// Flash attention's varlen log-sum-exp is [heads, queries] in recent PyTorch and was
// [entries, heads, longest entry] before; the backward wants it as the forward gave it.
std::atomic<bool> padded_lse{false};

torch::Tensor LseRows(const torch::Tensor& lse, const VarlenCall& call) {
  if (lse.dim() == 2) return lse;
  padded_lse = true;
  std::vector<torch::Tensor> rows;
  for (size_t e = 0; e + 1 < call.cu_q.size(); ++e) {
    rows.push_back(lse[e].narrow(1, 0, call.cu_q[e + 1] - call.cu_q[e]));
  }
  return torch::cat(rows, 1);
}

torch::Tensor KernelLse(const torch::Tensor& rows, const VarlenCall& call) {
  if (!padded_lse) return rows.contiguous();
  const int64_t entries = static_cast<int64_t>(call.cu_q.size()) - 1;
  torch::Tensor padded = torch::zeros({entries, rows.size(0), call.max_q}, rows.options());
  for (int64_t e = 0; e < entries; ++e) {
    const int64_t length = call.cu_q[e + 1] - call.cu_q[e];
    padded[e].narrow(1, 0, length).copy_(rows.narrow(1, call.cu_q[e], length));
  }
  return padded;
}

class FlashVarlen : public VarlenKernel {
 public:
  bool Accepts(const torch::Tensor& q) const override { return HalfPrecision(q) && q.is_cuda(); }

  AttentionResult Forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const VarlenCall& call, double scale) const override {
    auto [out, lse, rng_state, unused, debug_mask] = at::_flash_attention_forward(
        q.contiguous(), k.contiguous(), v.contiguous(), DeviceInt32(call.cu_q, q.device()),
        DeviceInt32(call.cu_k, q.device()), call.max_q, call.max_k, /*dropout_p=*/0.0, call.causal,
        /*return_debug_mask=*/false, scale);
    return {out, LseRows(lse, call)};
  }

  AttentionGrads Backward(const torch::Tensor& dout, const torch::Tensor& q, const torch::Tensor& k,
                          const torch::Tensor& v, const torch::Tensor& out,
                          const torch::Tensor& lse, const VarlenCall& call,
                          double scale) const override {
    // The random state is read only with dropout, which training here never uses.
    const auto int64 = q.options().dtype(torch::kInt64);
    auto [dq, dk, dv] = at::_flash_attention_backward(
        dout.to(q.scalar_type()).contiguous(), q.contiguous(), k.contiguous(), v.contiguous(),
        out.to(q.scalar_type()).contiguous(), KernelLse(lse, call),
        DeviceInt32(call.cu_q, q.device()), DeviceInt32(call.cu_k, q.device()), call.max_q,
        call.max_k, /*dropout_p=*/0.0, call.causal, /*philox_seed=*/torch::empty({2}, int64),
        /*philox_offset=*/torch::empty({}, int64), scale);
    return {dq, dk, dv};
  }
};

}  // namespace

torch::Tensor FusedDocumentAttention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const TokenLayout& layout,
                                     double scale, FusedKernel kernel) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "q, k, v must be [T, H, D]");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads (", q.size(1),
              ") must be a multiple of key-value heads (", k.size(1), ")");
  // The flash and cuDNN kernels take bf16 and fp16 only.
  if (!HalfPrecision(q) &&
      (kernel == FusedKernel::kVarlenFlash || kernel == FusedKernel::kPerDocumentCudnn ||
       kernel == FusedKernel::kHybrid)) {
    kernel = FusedKernel::kPerDocument;
  }
  if (kernel == FusedKernel::kVarlenFlash) {
    return AttendKeys(q, k, v, layout, layout, scale, FlashPartialAttention());
  }
  const std::shared_ptr<const DocumentSplit> split = KeptSplit(layout);
  if (kernel != FusedKernel::kHybrid) {
    return PerDocumentAttention(q, k, v, split->bounds, scale, kernel);
  }
  std::vector<torch::Tensor> outputs;
  for (size_t i = 0; i < split->runs.size(); ++i) {
    const HybridRun& run = split->runs[i];
    if (run.long_document) {
      outputs.push_back(PerDocumentAttention(q, k, v, {run.begin, run.begin + run.length}, scale,
                                             FusedKernel::kPerDocumentGqa));
    } else {
      outputs.push_back(AttendKeys(q.narrow(0, run.begin, run.length),
                                   k.narrow(0, run.begin, run.length),
                                   v.narrow(0, run.begin, run.length), split->slices[i],
                                   split->slices[i], scale, FlashPartialAttention()));
    }
  }
  return outputs.size() == 1 ? outputs[0] : torch::cat(outputs, 0);
}

std::shared_ptr<const VarlenKernel> FlashVarlenKernel() { return std::make_shared<FlashVarlen>(); }

const PartialAttention& FlashPartialAttention() {
  static const auto* const kFlash =
      new std::shared_ptr<const PartialAttention>(VarlenPartialAttention(FlashVarlenKernel()));
  return **kFlash;
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                            const TokenLayout&, double)>
FusedAttentionCore(FusedKernel kernel) {
  return [kernel](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const TokenLayout& layout,
                  double scale) { return FusedDocumentAttention(q, k, v, layout, scale, kernel); };
}

}  // namespace prolong::attention
