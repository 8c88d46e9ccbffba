#include "trainer/attention/blockwise_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "torch/torch.h"
#include "trainer/attention/attention_memo.h"

namespace prolong::attention {
namespace {

using torch::Tensor;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// A run of consecutive tokens and the bounds of their mask inputs. Bounds are taken per block
// because a context-parallel query set is two chunks, so order holds only piecewise.
struct Block {
  int64_t begin = 0;
  int64_t size = 0;
  int64_t doc_min = 0;
  int64_t doc_max = 0;
  int64_t pos_min = 0;
  int64_t pos_max = 0;
};

std::vector<Block> SplitIntoBlocks(const TokenLayout& layout, int64_t block_size) {
  const Tensor document = layout.document.to(torch::kCPU).contiguous();
  const Tensor position = layout.position.to(torch::kCPU).contiguous();
  const int64_t* doc = document.data_ptr<int64_t>();
  const int64_t* pos = position.data_ptr<int64_t>();
  const int64_t length = document.numel();
  std::vector<Block> blocks;
  blocks.reserve((length + block_size - 1) / block_size);
  for (int64_t begin = 0; begin < length; begin += block_size) {
    Block block;
    block.begin = begin;
    block.size = std::min(block_size, length - begin);
    block.doc_min = block.doc_max = doc[begin];
    block.pos_min = block.pos_max = pos[begin];
    for (int64_t i = begin + 1; i < begin + block.size; ++i) {
      block.doc_min = std::min(block.doc_min, doc[i]);
      block.doc_max = std::max(block.doc_max, doc[i]);
      block.pos_min = std::min(block.pos_min, pos[i]);
      block.pos_max = std::max(block.pos_max, pos[i]);
    }
    blocks.push_back(block);
  }
  return blocks;
}

// The mask inputs on the device of the attention tensors, for per-element masks.
struct DeviceLayouts {
  Tensor q_document, q_position, k_document, k_position;
};

DeviceLayouts ToDevice(const TokenLayout& q_layout, const TokenLayout& k_layout,
                       torch::Device device) {
  return {q_layout.document.to(device), q_layout.position.to(device), k_layout.document.to(device),
          k_layout.position.to(device)};
}

// Returns false when no (query, key) pair of the two blocks may attend, so the caller skips the
// pair without any arithmetic. Otherwise sets `*disallowed` to the [bq, bk] mask of forbidden
// pairs, or to an undefined tensor when every pair is allowed and masking can be skipped too.
bool BlockPairMask(const Block& qb, const Block& kb, const DeviceLayouts& layouts,
                   Tensor* disallowed) {
  *disallowed = Tensor();
  if (kb.pos_min > qb.pos_max || kb.doc_max < qb.doc_min || kb.doc_min > qb.doc_max) {
    return false;
  }
  const bool one_document =
      qb.doc_min == qb.doc_max && kb.doc_min == kb.doc_max && qb.doc_min == kb.doc_min;
  if (one_document && kb.pos_max <= qb.pos_min) return true;
  const Tensor q_doc = layouts.q_document.narrow(0, qb.begin, qb.size).unsqueeze(1);
  const Tensor q_pos = layouts.q_position.narrow(0, qb.begin, qb.size).unsqueeze(1);
  const Tensor k_doc = layouts.k_document.narrow(0, kb.begin, kb.size).unsqueeze(0);
  const Tensor k_pos = layouts.k_position.narrow(0, kb.begin, kb.size).unsqueeze(0);
  *disallowed = q_doc.ne(k_doc).logical_or_(k_pos.gt(q_pos));
  // Bounds are conservative when a block spans two chunks or documents; the exact mask may
  // still forbid everything.
  return !disallowed->all().item<bool>();
}

void CheckLayout(const char* name, const TokenLayout& layout, int64_t length) {
  for (const auto& [field, tensor] :
       {std::pair<const char*, const Tensor&>{"document", layout.document},
        std::pair<const char*, const Tensor&>{"position", layout.position}}) {
    TORCH_CHECK(tensor.defined(), name, ".", field, " is undefined");
    TORCH_CHECK(tensor.dim() == 1 && tensor.size(0) == length, name, ".", field, " must be [",
                length, "] (one per token), got ", tensor.sizes());
    TORCH_CHECK(tensor.scalar_type() == torch::kLong, name, ".", field, " must be int64, got ",
                tensor.scalar_type());
  }
}

void CheckInputs(const Tensor& q, const Tensor& k, const Tensor& v, const TokenLayout& q_layout,
                 const TokenLayout& k_layout, int64_t block_size) {
  TORCH_CHECK(q.defined() && k.defined() && v.defined(), "q, k and v must be defined");
  TORCH_CHECK(q.dim() == 3, "q must be [Tq, Hq, D], got ", q.sizes());
  TORCH_CHECK(k.dim() == 3, "k must be [Tk, Hkv, D], got ", k.sizes());
  TORCH_CHECK(k.sizes() == v.sizes(), "k and v must have the same shape, got k ", k.sizes(),
              " and v ", v.sizes());
  TORCH_CHECK(q.size(2) == k.size(2) && q.size(2) > 0,
              "q and k must have the same positive head dim, got q ", q.sizes(), " and k ",
              k.sizes());
  TORCH_CHECK(k.size(1) > 0 && q.size(1) % k.size(1) == 0, "q's head count (", q.size(1),
              ") must be a multiple of k's (", k.size(1), "), got q ", q.sizes(), " and k ",
              k.sizes());
  TORCH_CHECK(q.is_floating_point(), "q must be floating point, got ", q.scalar_type());
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "q, k and v must have the same dtype, got ", q.scalar_type(), ", ", k.scalar_type(),
              " and ", v.scalar_type());
  TORCH_CHECK(k.device() == q.device() && v.device() == q.device(),
              "q, k and v must be on the same device, got ", q.device(), ", ", k.device(), " and ",
              v.device());
  TORCH_CHECK(block_size > 0, "block_size must be positive, got ", block_size);
  CheckLayout("q_layout", q_layout, q.size(0));
  CheckLayout("k_layout", k_layout, k.size(0));
}

double ResolveScale(std::optional<double> scale, int64_t head_dim) {
  const double resolved = scale.value_or(1.0 / std::sqrt(static_cast<double>(head_dim)));
  TORCH_CHECK(std::isfinite(resolved), "scale must be finite, got ", resolved);
  return resolved;
}

// The float32 operands every kernel uses, laid out so that one bmm covers all heads and a
// query block of every head in a kv group forms one [G * bq, D] matrix per kv head: grouped-
// query attention then needs no copy of K or V per query head.
struct Operands {
  int64_t tq, tk, hq, hkv, groups, head_dim;
  Tensor q;  // [Hkv, G, Tq, D], pre-multiplied by the scale.
  Tensor k;  // [Hkv, Tk, D]
  Tensor v;  // [Hkv, Tk, D]
};

// [T, H, D] -> float32 [H, T, D], contiguous.
Tensor HeadsFirst(const Tensor& x) { return x.to(torch::kFloat).permute({1, 0, 2}).contiguous(); }

Operands Prepare(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  Operands ops;
  ops.tq = q.size(0);
  ops.hq = q.size(1);
  ops.head_dim = q.size(2);
  ops.tk = k.size(0);
  ops.hkv = k.size(1);
  ops.groups = ops.hq / ops.hkv;
  // Scaled in a tensor of its own: HeadsFirst may return q itself (one row, or one head).
  ops.q = torch::empty({ops.hq, ops.tq, ops.head_dim}, q.options().dtype(torch::kFloat))
              .copy_(q.permute({1, 0, 2}))
              .mul_(scale)
              .view({ops.hkv, ops.groups, ops.tq, ops.head_dim});
  ops.k = HeadsFirst(k);
  ops.v = HeadsFirst(v);
  return ops;
}

// Rows of a query block of a [Hkv, G, Tq, ...] tensor as [Hkv, G * bq, ...].
Tensor QueryRows(const Tensor& x, const Operands& ops, const Block& qb) {
  std::vector<int64_t> shape = {ops.hkv, ops.groups * qb.size};
  for (int64_t i = 3; i < x.dim(); ++i) shape.push_back(x.size(i));
  return x.narrow(2, qb.begin, qb.size).reshape(shape);
}

// Scaled scores of a block pair, [Hkv, G * bq, bk], with forbidden pairs at -inf.
Tensor BlockScores(const Tensor& q_rows, const Tensor& k_block, const Tensor& disallowed,
                   const Operands& ops, const Block& qb, const Block& kb) {
  Tensor scores = torch::bmm(q_rows, k_block.transpose(1, 2));
  if (disallowed.defined()) {
    scores.view({ops.hkv, ops.groups, qb.size, kb.size}).masked_fill_(disallowed, kNegInf);
  }
  return scores;
}

}  // namespace

AttentionResult BlockwiseAttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                          const TokenLayout& q_layout, const TokenLayout& k_layout,
                                          std::optional<double> scale, int64_t block_size) {
  CheckInputs(q, k, v, q_layout, k_layout, block_size);
  torch::NoGradGuard no_grad;
  const Operands ops = Prepare(q, k, v, ResolveScale(scale, q.size(2)));
  const auto f32 = q.options().dtype(torch::kFloat);
  const DeviceLayouts layouts = ToDevice(q_layout, k_layout, q.device());
  const std::vector<Block> q_blocks = SplitIntoBlocks(q_layout, block_size);
  const std::vector<Block> k_blocks = SplitIntoBlocks(k_layout, block_size);

  // Rows no key reaches keep these values.
  Tensor out = torch::zeros({ops.hkv, ops.groups, ops.tq, ops.head_dim}, f32);
  Tensor lse = torch::full({ops.hkv, ops.groups, ops.tq}, kNegInf, f32);
  Tensor disallowed;
  for (const Block& qb : q_blocks) {
    const Tensor q_rows = QueryRows(ops.q, ops, qb);
    const int64_t rows = ops.groups * qb.size;
    Tensor row_max = torch::full({ops.hkv, rows}, kNegInf, f32);
    Tensor row_sum = torch::zeros({ops.hkv, rows}, f32);
    Tensor acc = torch::zeros({ops.hkv, rows, ops.head_dim}, f32);
    bool any_pair = false;
    for (const Block& kb : k_blocks) {
      if (!BlockPairMask(qb, kb, layouts, &disallowed)) continue;
      any_pair = true;
      const Tensor scores =
          BlockScores(q_rows, ops.k.narrow(1, kb.begin, kb.size), disallowed, ops, qb, kb);
      const Tensor new_max = torch::maximum(row_max, scores.amax(-1));
      // A row with nothing allowed so far has max -inf; shifting by 0 instead keeps its
      // exponentials at exp(-inf) = 0 rather than exp(-inf + inf) = NaN.
      const Tensor shift = new_max.masked_fill(new_max.isneginf(), 0.0);
      const Tensor probs = (scores - shift.unsqueeze(-1)).exp_();
      const Tensor rescale = (row_max - shift).exp_();
      row_sum.mul_(rescale).add_(probs.sum(-1));
      acc.mul_(rescale.unsqueeze(-1)).baddbmm_(probs, ops.v.narrow(1, kb.begin, kb.size));
      row_max = new_max;
    }
    if (!any_pair) continue;
    // Empty rows have acc = 0 and sum = 0; dividing them by 1 leaves them at 0.
    const Tensor denom = row_sum.masked_fill(row_sum.eq(0), 1.0).unsqueeze(-1);
    out.narrow(2, qb.begin, qb.size)
        .copy_(acc.div_(denom).view({ops.hkv, ops.groups, qb.size, ops.head_dim}));
    // -inf + log(0) stays -inf for empty rows.
    lse.narrow(2, qb.begin, qb.size)
        .copy_(row_max.add_(row_sum.log()).view({ops.hkv, ops.groups, qb.size}));
  }
  return {
      out.view({ops.hq, ops.tq, ops.head_dim}).permute({1, 0, 2}).to(q.scalar_type()).contiguous(),
      lse.view({ops.hq, ops.tq})};
}

AttentionGrads BlockwiseAttentionBackward(const Tensor& dout, const Tensor& q, const Tensor& k,
                                          const Tensor& v, const Tensor& out, const Tensor& lse,
                                          const TokenLayout& q_layout, const TokenLayout& k_layout,
                                          std::optional<double> scale, int64_t block_size) {
  CheckInputs(q, k, v, q_layout, k_layout, block_size);
  TORCH_CHECK(dout.defined() && dout.sizes() == q.sizes(), "dout must have q's shape ", q.sizes(),
              ", got ", dout.defined() ? dout.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(out.defined() && out.sizes() == q.sizes(), "out must have q's shape ", q.sizes(),
              ", got ", out.defined() ? out.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(
      lse.defined() && lse.dim() == 2 && lse.size(0) == q.size(1) && lse.size(1) == q.size(0),
      "lse must be [Hq, Tq] = [", q.size(1), ", ", q.size(0), "], got ",
      lse.defined() ? lse.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(lse.scalar_type() == torch::kFloat, "lse must be float32, got ", lse.scalar_type());
  torch::NoGradGuard no_grad;
  const double resolved_scale = ResolveScale(scale, q.size(2));
  const Operands ops = Prepare(q, k, v, resolved_scale);
  const DeviceLayouts layouts = ToDevice(q_layout, k_layout, q.device());
  const std::vector<Block> q_blocks = SplitIntoBlocks(q_layout, block_size);
  const std::vector<Block> k_blocks = SplitIntoBlocks(k_layout, block_size);

  const Tensor dout_f = HeadsFirst(dout).view({ops.hkv, ops.groups, ops.tq, ops.head_dim});
  const Tensor out_f = HeadsFirst(out).view({ops.hkv, ops.groups, ops.tq, ops.head_dim});
  // D_i = rowsum(dO * O) = sum_j P_ij dP_ij, the softmax Jacobian's correction term.
  const Tensor delta = (dout_f * out_f).sum(-1);
  // Empty rows have every score at -inf, so any finite shift gives them probability 0.
  const Tensor lse_f = lse.to(q.device()).view({ops.hkv, ops.groups, ops.tq});
  const Tensor shift = lse_f.masked_fill(lse_f.isneginf(), 0.0);

  Tensor dq = torch::zeros_like(ops.q);
  Tensor dk = torch::zeros_like(ops.k);
  Tensor dv = torch::zeros_like(ops.v);
  Tensor disallowed;
  for (const Block& qb : q_blocks) {
    const Tensor q_rows = QueryRows(ops.q, ops, qb);
    const Tensor dout_rows = QueryRows(dout_f, ops, qb);
    const Tensor shift_rows = QueryRows(shift, ops, qb).unsqueeze(-1);
    const Tensor delta_rows = QueryRows(delta, ops, qb).unsqueeze(-1);
    Tensor dq_rows = torch::zeros_like(q_rows);
    bool any_pair = false;
    for (const Block& kb : k_blocks) {
      if (!BlockPairMask(qb, kb, layouts, &disallowed)) continue;
      any_pair = true;
      const Tensor k_block = ops.k.narrow(1, kb.begin, kb.size);
      const Tensor v_block = ops.v.narrow(1, kb.begin, kb.size);
      const Tensor probs =
          BlockScores(q_rows, k_block, disallowed, ops, qb, kb).sub_(shift_rows).exp_();
      // Summing over the G * bq rows also sums the query heads that share a kv head.
      dv.narrow(1, kb.begin, kb.size).add_(torch::bmm(probs.transpose(1, 2), dout_rows));
      const Tensor dscores =
          torch::bmm(dout_rows, v_block.transpose(1, 2)).sub_(delta_rows).mul_(probs);
      dq_rows.baddbmm_(dscores, k_block);
      // q_rows already carries the scale that dK = scale * dS^T Q needs.
      dk.narrow(1, kb.begin, kb.size).add_(torch::bmm(dscores.transpose(1, 2), q_rows));
    }
    if (!any_pair) continue;
    dq.narrow(2, qb.begin, qb.size)
        .copy_(dq_rows.mul_(resolved_scale).view({ops.hkv, ops.groups, qb.size, ops.head_dim}));
  }
  auto tokens_first = [](const Tensor& x, int64_t heads, const Tensor& like) {
    return x.view({heads, like.size(0), like.size(2)})
        .permute({1, 0, 2})
        .to(like.scalar_type())
        .contiguous();
  };
  return {tokens_first(dq, ops.hq, q), tokens_first(dk, ops.hkv, k), tokens_first(dv, ops.hkv, v)};
}

AttentionResult MergePartialAttention(const AttentionResult& a, const AttentionResult& b) {
  TORCH_CHECK(a.out.defined() && a.out.dim() == 3, "a.out must be [Tq, Hq, D], got ",
              a.out.defined() ? a.out.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(b.out.defined() && b.out.sizes() == a.out.sizes(), "b.out must have a.out's shape ",
              a.out.sizes(), ", got ", b.out.defined() ? b.out.sizes() : torch::IntArrayRef{});
  const int64_t tq = a.out.size(0);
  const int64_t hq = a.out.size(1);
  for (const auto& [name, lse] : {std::pair<const char*, const Tensor&>{"a.lse", a.lse},
                                  std::pair<const char*, const Tensor&>{"b.lse", b.lse}}) {
    TORCH_CHECK(lse.defined() && lse.dim() == 2 && lse.size(0) == hq && lse.size(1) == tq, name,
                " must be [Hq, Tq] = [", hq, ", ", tq, "], got ",
                lse.defined() ? lse.sizes() : torch::IntArrayRef{});
    TORCH_CHECK(lse.scalar_type() == torch::kFloat, name, " must be float32, got ",
                lse.scalar_type());
  }
  torch::NoGradGuard no_grad;
  const Tensor hi = torch::maximum(a.lse, b.lse);
  const Tensor lo = torch::minimum(a.lse, b.lse);
  const Tensor both_empty = hi.isneginf();
  // exp(lo - hi) is NaN only where both are -inf; those rows stay -inf.
  const Tensor lse = (hi + (lo - hi).exp().log1p()).masked_fill_(both_empty, kNegInf);
  // Shifting empty rows by 0 makes both weights exp(-inf) = 0, so their out stays 0.
  const Tensor shift = lse.masked_fill(both_empty, 0.0);
  // [Hq, Tq] -> [Tq, Hq, 1] to weight out rows.
  auto weight = [&](const Tensor& part_lse) { return (part_lse - shift).exp_().t().unsqueeze(-1); };
  const Tensor out =
      a.out.to(torch::kFloat) * weight(a.lse) + b.out.to(torch::kFloat) * weight(b.lse);
  return {out, lse};
}

namespace {

class DocumentMaskedAttentionFunction
    : public torch::autograd::Function<DocumentMaskedAttentionFunction> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, Tensor q, Tensor k, Tensor v,
                        Tensor q_document, Tensor q_position, Tensor k_document, Tensor k_position,
                        double scale, int64_t block_size) {
    // A checkpointed layer's recomputation may take the result its forward recorded.
    const std::optional<AttentionResult> replayed = ReplayAttention();
    const AttentionResult result =
        replayed ? *replayed
                 : BlockwiseAttentionForward(q, k, v, {q_document, q_position},
                                             {k_document, k_position}, scale, block_size);
    if (!replayed) RecordAttention(result);
    ctx->save_for_backward(
        {q, k, v, result.out, result.lse, q_document, q_position, k_document, k_position});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["block_size"] = block_size;
    return result.out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    // One entry per forward argument; the layouts, scale and block size get none.
    torch::autograd::tensor_list grads(9);
    if (!grad_outputs[0].defined()) return grads;
    const AttentionGrads g = BlockwiseAttentionBackward(
        grad_outputs[0], saved[0], saved[1], saved[2], saved[3], saved[4], {saved[5], saved[6]},
        {saved[7], saved[8]}, ctx->saved_data["scale"].toDouble(),
        ctx->saved_data["block_size"].toInt());
    grads[0] = g.dq;
    grads[1] = g.dk;
    grads[2] = g.dv;
    return grads;
  }
};

}  // namespace

Tensor DocumentMaskedAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                               const TokenLayout& q_layout, const TokenLayout& k_layout,
                               std::optional<double> scale, int64_t block_size) {
  CheckInputs(q, k, v, q_layout, k_layout, block_size);
  return DocumentMaskedAttentionFunction::apply(q, k, v, q_layout.document, q_layout.position,
                                                k_layout.document, k_layout.position,
                                                ResolveScale(scale, q.size(2)), block_size);
}

}  // namespace prolong::attention
