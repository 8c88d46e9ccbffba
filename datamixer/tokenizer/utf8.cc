#include "datamixer/tokenizer/utf8.h"

#include <cstdint>

namespace prolong::tokenizer {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

// Length of the well-formed sequence starting at text[i], or 0 if it is ill-formed; in that
// case *maximal is the length of its maximal ill-formed prefix (at least 1), per the Unicode
// standard's "maximal subpart" rule that WHATWG decoders follow (Table 3-7 ranges).
size_t SequenceLength(absl::string_view text, size_t i, size_t* maximal) {
  const uint8_t lead = static_cast<uint8_t>(text[i]);
  size_t needed = 0;
  uint8_t lower = 0x80, upper = 0xBF;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 2;
    if (lead == 0xE0) lower = 0xA0;
    if (lead == 0xED) upper = 0x9F;  // No UTF-16 surrogates.
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 3;
    if (lead == 0xF0) lower = 0x90;
    if (lead == 0xF4) upper = 0x8F;  // Nothing above U+10FFFF.
  } else {
    *maximal = 1;
    return 0;
  }
  for (size_t k = 1; k <= needed; ++k) {
    if (i + k >= text.size()) {
      *maximal = k;
      return 0;
    }
    const uint8_t byte = static_cast<uint8_t>(text[i + k]);
    if (byte < lower || byte > upper) {
      *maximal = k;
      return 0;
    }
    lower = 0x80;
    upper = 0xBF;
  }
  return needed + 1;
}

}  // namespace

size_t FindInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t maximal = 0;
    const size_t length = SequenceLength(text, i, &maximal);
    if (length == 0) return i;
    i += length;
  }
  return text.size();
}

std::string ReplaceInvalidUtf8(absl::string_view text) {
  size_t i = FindInvalidUtf8(text);
  if (i == text.size()) return std::string(text);
  std::string out(text.substr(0, i));
  out.reserve(text.size() + 16);
  while (i < text.size()) {
    size_t maximal = 0;
    const size_t length = SequenceLength(text, i, &maximal);
    if (length > 0) {
      out.append(text.data() + i, length);
      i += length;
    } else {
      out.append(kReplacement);
      i += maximal;
    }
  }
  return out;
}

}  // namespace prolong::tokenizer
