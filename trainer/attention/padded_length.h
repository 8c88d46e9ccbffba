// The length a document is padded to before a kernel that plans per shape (cuDNN builds a graph,
// hundreds of milliseconds, for every new sequence length): a multiple of 256 up to 2,048 tokens,
// beyond that a multiple of 1/8 of the largest power of two below the length. 8 lengths up to
// 2,048 and 8 per octave above, so a run meets a few dozen shapes; at most 12.5% more tokens
// above 2,048. Causal attention keeps the padding after a document's last token out of every real
// token's output and gradient.
#ifndef PROLONG_TRAINER_ATTENTION_PADDED_LENGTH_H_
#define PROLONG_TRAINER_ATTENTION_PADDED_LENGTH_H_

#include <cstdint>

namespace prolong::attention {

// `length` >= 1.
int64_t PaddedDocumentLength(int64_t length);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_PADDED_LENGTH_H_
