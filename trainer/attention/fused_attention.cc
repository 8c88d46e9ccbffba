#include "trainer/attention/fused_attention.h"

#include <algorithm>
#include <vector>

#include "ATen/ATen.h"
#include "torch/autograd.h"
#include "trainer/attention/padded_length.h"

namespace prolong::attention {
namespace {

// Where each document begins, and the end: runs of equal layout.document in token order.
std::vector<int64_t> DocumentBounds(const TokenLayout& layout) {
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

// Flash attention's varlen forward and backward as one autograd node; the backward recomputes
// the attention from q, k, v, the output and the log-sum-exp, as the kernel is designed to.
class VarlenFlash : public torch::autograd::Function<VarlenFlash> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& cu_seqlens, int64_t max_length, double scale) {
    auto [out, lse, philox_seed, philox_offset, debug_mask] = at::_flash_attention_forward(
        q, k, v, cu_seqlens, cu_seqlens, max_length, max_length, /*dropout_p=*/0.0,
        /*is_causal=*/true, /*return_debug_mask=*/false, scale);
    context->save_for_backward({q, k, v, out, lse, cu_seqlens, philox_seed, philox_offset});
    context->saved_data["max_length"] = max_length;
    context->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_out) {
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const int64_t max_length = context->saved_data["max_length"].toInt();
    auto [dq, dk, dv] = at::_flash_attention_backward(
        grad_out[0].contiguous(), saved[0], saved[1], saved[2], saved[3], saved[4], saved[5],
        saved[5], max_length, max_length, /*dropout_p=*/0.0, /*is_causal=*/true, saved[6], saved[7],
        context->saved_data["scale"].toDouble());
    return {dq, dk, dv, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor VarlenFlashAttention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const std::vector<int64_t>& bounds,
                                   double scale) {
  int64_t max_length = 0;
  for (size_t d = 0; d + 1 < bounds.size(); ++d) {
    max_length = std::max(max_length, bounds[d + 1] - bounds[d]);
  }
  const torch::Tensor cu_seqlens =
      torch::tensor(bounds, torch::kInt64).to(q.device(), torch::kInt32);
  return VarlenFlash::apply(q.contiguous(), k.contiguous(), v.contiguous(), cu_seqlens, max_length,
                            scale);
}

}  // namespace

torch::Tensor FusedDocumentAttention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const TokenLayout& layout,
                                     double scale, FusedKernel kernel) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "q, k, v must be [T, H, D]");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads (", q.size(1),
              ") must be a multiple of key-value heads (", k.size(1), ")");
  const std::vector<int64_t> bounds = DocumentBounds(layout);
  const bool half = q.scalar_type() == torch::kBFloat16 || q.scalar_type() == torch::kHalf;
  // The flash and cuDNN kernels take bf16 and fp16 only.
  if (!half && (kernel == FusedKernel::kVarlenFlash || kernel == FusedKernel::kPerDocumentCudnn)) {
    kernel = FusedKernel::kPerDocument;
  }
  if (kernel == FusedKernel::kVarlenFlash) return VarlenFlashAttention(q, k, v, bounds, scale);
  return PerDocumentAttention(q, k, v, bounds, scale, kernel);
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                            const TokenLayout&, double)>
FusedAttentionCore(FusedKernel kernel) {
  return [kernel](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const TokenLayout& layout,
                  double scale) { return FusedDocumentAttention(q, k, v, layout, scale, kernel); };
}

}  // namespace prolong::attention
