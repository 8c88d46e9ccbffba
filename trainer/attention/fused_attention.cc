#include "trainer/attention/fused_attention.h"

#include <vector>

#include "ATen/ATen.h"

namespace prolong::attention {

torch::Tensor FusedDocumentAttention(const torch::Tensor& q, const torch::Tensor& k,
                                     const torch::Tensor& v, const TokenLayout& layout,
                                     double scale) {
  TORCH_CHECK(q.dim() == 3 && k.dim() == 3 && v.dim() == 3, "q, k, v must be [T, H, D]");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads (", q.size(1),
              ") must be a multiple of key-value heads (", k.size(1), ")");
  const int64_t tokens = q.size(0);
  const torch::Tensor documents = layout.document.to(torch::kCPU).contiguous();
  const int64_t* document = documents.data_ptr<int64_t>();
  const int64_t groups = q.size(1) / k.size(1);
  const torch::Tensor keys = k.repeat_interleave(groups, 1);
  const torch::Tensor values = v.repeat_interleave(groups, 1);
  // Per document: [1, H, L, D] views in (the kernels want heads before tokens), [L, H, D] out.
  auto heads_first = [](const torch::Tensor& x, int64_t begin, int64_t length) {
    return x.narrow(0, begin, length).transpose(0, 1).unsqueeze(0).contiguous();
  };
  std::vector<torch::Tensor> outputs;
  for (int64_t begin = 0; begin < tokens;) {
    int64_t end = begin + 1;
    while (end < tokens && document[end] == document[begin]) ++end;
    const int64_t length = end - begin;
    outputs.push_back(at::scaled_dot_product_attention(
                          heads_first(q, begin, length), heads_first(keys, begin, length),
                          heads_first(values, begin, length), std::nullopt, 0.0,
                          /*is_causal=*/true, scale)
                          .squeeze(0)
                          .transpose(0, 1));
    begin = end;
  }
  return torch::cat(outputs, 0);
}

}  // namespace prolong::attention
