// UTF-8 validation and repair. Text is repaired before tokenizing exactly as a WHATWG UTF-8
// decoder (TextDecoder, Node's Buffer.toString) would hand it to a JavaScript tokenizer: each
// maximal ill-formed subsequence becomes one U+FFFD. This keeps our ids equal to tiktoken's on
// the same bytes.
#ifndef PROLONG_DATAMIXER_TOKENIZER_UTF8_H_
#define PROLONG_DATAMIXER_TOKENIZER_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prolong::tokenizer {

// Offset of the first byte that is not part of well-formed UTF-8, or text.size() if none.
size_t FindInvalidUtf8(absl::string_view text);

// `text` with every maximal ill-formed subsequence replaced by U+FFFD (EF BF BD).
std::string ReplaceInvalidUtf8(absl::string_view text);

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_UTF8_H_
