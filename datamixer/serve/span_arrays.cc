#include "datamixer/serve/span_arrays.h"

#include <algorithm>
#include <cstring>

namespace prolong::serve {

SpanArrays ExpandSpan(const v1::SequenceSlice& sequence, const v1::TokenSpan& span) {
  SpanArrays arrays;
  const size_t size = span.token_ids().size() / sizeof(uint32_t);
  arrays.token_ids.resize(size);
  std::memcpy(arrays.token_ids.data(), span.token_ids().data(), size * sizeof(uint32_t));
  arrays.loss_mask.assign(span.loss_mask().begin(), span.loss_mask().end());
  arrays.target_ids.resize(size);
  arrays.position_ids.resize(size);
  const auto& bounds = sequence.cu_seqlens();
  // The piece holding the span's first token: the last boundary at or before it.
  int piece = static_cast<int>(std::upper_bound(bounds.begin(), bounds.end(), span.offset()) -
                               bounds.begin()) -
              1;
  for (size_t k = 0; k < size; ++k) {
    const int32_t i = span.offset() + static_cast<int32_t>(k);
    while (piece + 1 < bounds.size() && bounds[piece + 1] <= i) ++piece;
    arrays.position_ids[k] = i - bounds[piece];
    const bool piece_ends = piece + 1 < bounds.size() && bounds[piece + 1] == i + 1;
    if (piece_ends) {
      arrays.target_ids[k] = 0;
    } else {
      arrays.target_ids[k] = k + 1 < size ? arrays.token_ids[k + 1] : span.next_token_id();
    }
  }
  return arrays;
}

}  // namespace prolong::serve
