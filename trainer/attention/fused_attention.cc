#include "trainer/attention/fused_attention.h"

#include <optional>
#include <vector>

#include "ATen/ATen.h"
#include "torch/autograd.h"
#include "trainer/attention/padded_length.h"
#include "trainer/attention/varlen_plan.h"

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

bool HalfPrecision(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf;
}

std::vector<int64_t> ToVector(const torch::Tensor& t) {
  const torch::Tensor cpu = t.to(torch::kCPU, torch::kInt64).contiguous();
  return std::vector<int64_t>(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + cpu.numel());
}

torch::Tensor DeviceInt32(const std::vector<int64_t>& values, const torch::Device& device) {
  return torch::tensor(values, torch::kInt64).to(device, torch::kInt32);
}

// Flash attention's varlen kernel over a VarlenPlan, forward and backward as one autograd node:
// each call's queries against its run of the keys sorted by the plan. The backward recomputes
// the attention from q, k, v, the output and the log-sum-exp, as the kernel is designed to, and
// sums each key's gradient over the calls that used it (in float32) at its input row; padding
// rows get zero.
class PlannedVarlenFlash : public torch::autograd::Function<PlannedVarlenFlash> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v,
                               const VarlenPlan& plan, double scale) {
    const torch::Device device = q.device();
    // Keys already sorted (one process: the queries' own) are used as they are.
    bool sorted = static_cast<int64_t>(plan.key_order.size()) == k.size(0);
    for (size_t i = 0; sorted && i < plan.key_order.size(); ++i) {
      sorted = plan.key_order[i] == static_cast<int64_t>(i);
    }
    const torch::Tensor order = torch::tensor(plan.key_order, torch::kInt64).to(device);
    const torch::Tensor keys = sorted ? k : k.index_select(0, order);
    const torch::Tensor values = sorted ? v : v.index_select(0, order);
    std::vector<torch::Tensor> saved = {q, keys, values, order};
    std::vector<int64_t> shape;  // per call: q_begin, queries, k_begin, keys, max_q, max_k
    std::vector<torch::Tensor> outputs;
    for (const VarlenCall& call : plan.calls) {
      const int64_t queries = call.cu_q.back(), key_count = call.cu_k.back();
      const torch::Tensor cu_q = DeviceInt32(call.cu_q, device);
      const torch::Tensor cu_k = DeviceInt32(call.cu_k, device);
      auto [out, lse, rng_state, unused, debug_mask] = at::_flash_attention_forward(
          q.narrow(0, call.q_begin, queries), keys.narrow(0, call.k_begin, key_count),
          values.narrow(0, call.k_begin, key_count), cu_q, cu_k, call.max_q, call.max_k,
          /*dropout_p=*/0.0, /*is_causal=*/true, /*return_debug_mask=*/false, scale);
      outputs.push_back(out);
      saved.insert(saved.end(), {cu_q, cu_k, out, lse, rng_state, unused});
      shape.insert(shape.end(),
                   {call.q_begin, queries, call.k_begin, key_count, call.max_q, call.max_k});
    }
    context->save_for_backward(saved);
    context->saved_data["shape"] = shape;
    context->saved_data["scale"] = scale;
    context->saved_data["rows"] = k.size(0);
    context->saved_data["sorted"] = sorted;
    return torch::cat(outputs, 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_out) {
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const std::vector<int64_t> shape = context->saved_data["shape"].toIntVector();
    const double scale = context->saved_data["scale"].toDouble();
    const torch::Tensor& q = saved[0];
    const torch::Tensor& keys = saved[1];
    const torch::Tensor& values = saved[2];
    const torch::Tensor& order = saved[3];
    const torch::Tensor dout = grad_out[0].contiguous();
    std::vector<torch::Tensor> dq;
    torch::Tensor dk = torch::zeros(keys.sizes(), keys.options().dtype(torch::kFloat32));
    torch::Tensor dv = torch::zeros(values.sizes(), values.options().dtype(torch::kFloat32));
    for (size_t c = 0; c * 6 < shape.size(); ++c) {
      const int64_t q_begin = shape[6 * c], queries = shape[6 * c + 1];
      const int64_t k_begin = shape[6 * c + 2], key_count = shape[6 * c + 3];
      const torch::Tensor* call = &saved[4 + 6 * c];  // cu_q, cu_k, out, lse, rng_state, unused
      auto [dq_call, dk_call, dv_call] = at::_flash_attention_backward(
          dout.narrow(0, q_begin, queries), q.narrow(0, q_begin, queries),
          keys.narrow(0, k_begin, key_count), values.narrow(0, k_begin, key_count), call[2],
          call[3], call[0], call[1], shape[6 * c + 4], shape[6 * c + 5], /*dropout_p=*/0.0,
          /*is_causal=*/true, call[4], call[5], scale);
      dq.push_back(dq_call);
      dk.narrow(0, k_begin, key_count).add_(dk_call);
      dv.narrow(0, k_begin, key_count).add_(dv_call);
    }
    // Back to the input rows, zero for padding rows.
    const int64_t rows = context->saved_data["rows"].toInt();
    const bool sorted = context->saved_data["sorted"].toBool();
    auto unsort = [&](const torch::Tensor& grad, torch::ScalarType dtype) {
      if (sorted) return grad.to(dtype);
      std::vector<int64_t> size = grad.sizes().vec();
      size[0] = rows;
      return torch::zeros(size, grad.options()).index_copy_(0, order, grad).to(dtype);
    };
    return {torch::cat(dq, 0), unsort(dk, keys.scalar_type()), unsort(dv, values.scalar_type()),
            torch::Tensor(), torch::Tensor()};
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
      (kernel == FusedKernel::kVarlenFlash || kernel == FusedKernel::kPerDocumentCudnn)) {
    kernel = FusedKernel::kPerDocument;
  }
  if (kernel == FusedKernel::kVarlenFlash) {
    return VarlenFlashKeyedAttention(q, k, v, layout, layout, scale);
  }
  return PerDocumentAttention(q, k, v, DocumentBounds(layout), scale, kernel);
}

torch::Tensor VarlenFlashKeyedAttention(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, const TokenLayout& q_layout,
                                        const TokenLayout& k_layout, double scale) {
  std::optional<VarlenPlan> plan;
  if (HalfPrecision(q) && q.is_cuda() && q.size(0) > 0) {
    plan = PlanVarlenAttention(ToVector(q_layout.document), ToVector(q_layout.position),
                               ToVector(k_layout.document), ToVector(k_layout.position));
  }
  if (!plan.has_value()) return DocumentMaskedAttention(q, k, v, q_layout, k_layout, scale);
  return PlannedVarlenFlash::apply(q.contiguous(), k.contiguous(), v.contiguous(), *plan, scale);
}

std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                            const TokenLayout&, double)>
FusedAttentionCore(FusedKernel kernel) {
  return [kernel](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                  const TokenLayout& layout,
                  double scale) { return FusedDocumentAttention(q, k, v, layout, scale, kernel); };
}

}  // namespace prolong::attention
