#include "trainer/parallel/gathered_layouts.h"

#include <tuple>

#include "torch/torch.h"

namespace prolong::parallel {
namespace {

using attention::TokenLayout;

// `local` followed by rows of `value` up to `rows` rows.
torch::Tensor PadRows(const torch::Tensor& local, int64_t rows, int64_t value) {
  torch::Tensor padded = torch::full({rows}, value, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  return padded;
}

// Whether any query may attend any key: a key is visible iff a query of its document sits at
// or after it. With short documents most blocks are invisible to most ranks.
bool AnyVisible(const TokenLayout& queries, const TokenLayout& keys) {
  const int64_t tq = queries.document.numel();
  const int64_t tk = keys.document.numel();
  if (tq == 0 || tk == 0) return false;
  // Each token as one number that orders by document, then position: its document numbered
  // densely (whatever the ids) times the span of positions, plus its position's offset.
  const torch::Tensor inverse =
      std::get<1>(at::_unique2(torch::cat({queries.document, keys.document}), /*sorted=*/true,
                               /*return_inverse=*/true, /*return_counts=*/false));
  const torch::Tensor positions = torch::cat({queries.position, keys.position});
  const torch::Tensor offsets = positions - positions.min();
  const int64_t span = offsets.max().item<int64_t>() + 1;
  const torch::Tensor codes = inverse * span + offsets;
  const torch::Tensor query_codes = std::get<0>(torch::sort(codes.narrow(0, 0, tq)));
  // The last query of each key's document sits just before the next document's first code.
  const torch::Tensor key_documents = inverse.narrow(0, tq, tk);
  const torch::Tensor end = torch::searchsorted(query_codes, (key_documents + 1) * span);
  const torch::Tensor last = query_codes.index_select(0, (end - 1).clamp_min(0));
  return end.gt(0).logical_and(last.ge(codes.narrow(0, tq, tk))).any().item<bool>();
}

}  // namespace

GatheredLayouts GatherLayouts(comm::Communicator& cp, const TokenLayout& local, bool visibility) {
  GatheredLayouts gathered;
  const int64_t tokens = local.document.size(0);
  gathered.rows = cp.AllGather(torch::tensor({tokens}, torch::kInt64)).max().item<int64_t>();
  // Document ids and positions travel together, in one exchange.
  const torch::Tensor all = cp.AllGather(torch::stack(
      {PadRows(local.document, gathered.rows, -1), PadRows(local.position, gathered.rows, 0)}, 1));
  gathered.keys = {all.select(1, 0).contiguous(), all.select(1, 1).contiguous()};
  for (int r = 0; r < cp.size(); ++r) {
    const TokenLayout block{gathered.keys.document.narrow(0, r * gathered.rows, gathered.rows),
                            gathered.keys.position.narrow(0, r * gathered.rows, gathered.rows)};
    if (visibility) gathered.visible.push_back(AnyVisible(local, block));
    gathered.blocks.push_back(block);
  }
  gathered.token_rows = gathered.keys.document.ge(0).nonzero().view({-1});
  gathered.tokens = {gathered.keys.document.index_select(0, gathered.token_rows),
                     gathered.keys.position.index_select(0, gathered.token_rows)};
  return gathered;
}

}  // namespace prolong::parallel
