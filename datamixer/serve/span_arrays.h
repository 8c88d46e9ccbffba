// A received span's per-token arrays in full: the wire carries token ids and the loss mask, and
// targets and positions follow from them and the sequence's cu_seqlens (see TokenSpan in
// proto/prolong/v1/datamixer.proto).
#ifndef PROLONG_DATAMIXER_SERVE_SPAN_ARRAYS_H_
#define PROLONG_DATAMIXER_SERVE_SPAN_ARRAYS_H_

#include <cstdint>
#include <vector>

#include "prolong/v1/datamixer.pb.h"

namespace prolong::serve {

struct SpanArrays {
  std::vector<uint32_t> token_ids;
  std::vector<uint32_t> target_ids;  // 0 at a document piece's last token.
  std::vector<uint8_t> loss_mask;
  std::vector<int32_t> position_ids;  // Within the document piece.
};

// `span` must be one of `sequence`'s spans.
SpanArrays ExpandSpan(const v1::SequenceSlice& sequence, const v1::TokenSpan& span);

}  // namespace prolong::serve

#endif  // PROLONG_DATAMIXER_SERVE_SPAN_ARRAYS_H_
