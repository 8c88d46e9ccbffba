#include "trainer/attention/padded_length.h"

namespace prolong::attention {

int64_t PaddedDocumentLength(int64_t length) {
  int64_t step = 256;
  if (length > 2048) {
    int64_t octave = 2048;  // the largest power of two below `length`
    while (octave * 2 < length) octave *= 2;
    step = octave / 8;
  }
  return (length + step - 1) / step * step;
}

}  // namespace prolong::attention
