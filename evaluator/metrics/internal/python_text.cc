#include "evaluator/metrics/internal/python_text.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace prolong::evaluator::metrics::internal {
namespace {

struct CodePointPair {
  char32_t from;
  char32_t to;
};

struct CodePointRange {
  char32_t first;
  char32_t last;
};

#include "evaluator/metrics/internal/python_unicode_tables.inc"

constexpr char32_t kReplacement = 0xFFFD;
constexpr char32_t kCapitalSigma = 0x3A3;
constexpr char32_t kSmallSigma = 0x3C3;
constexpr char32_t kFinalSigma = 0x3C2;
constexpr char32_t kCapitalIWithDot = 0x130;
constexpr char32_t kCombiningDotAbove = 0x307;

template <size_t N>
bool InRanges(const CodePointRange (&ranges)[N], char32_t c) {
  const CodePointRange* end = ranges + N;
  const CodePointRange* it = std::upper_bound(
      ranges, end, c, [](char32_t value, const CodePointRange& r) { return value < r.first; });
  return it != ranges && c <= std::prev(it)->last;
}

bool IsCaseIgnorable(char32_t c) { return InRanges(kCaseIgnorable, c); }
bool IsCased(char32_t c) { return InRanges(kCased, c); }

// CPython's handle_capital_sigma: U+03A3 lowers to final sigma when a cased letter precedes it
// and none follows, skipping case-ignorable characters both ways.
char32_t LowerCapitalSigma(std::u32string_view text, size_t i) {
  size_t j = i;
  while (j > 0 && IsCaseIgnorable(text[j - 1])) --j;
  if (j == 0 || !IsCased(text[j - 1])) return kSmallSigma;
  size_t k = i + 1;
  while (k < text.size() && IsCaseIgnorable(text[k])) ++k;
  return k == text.size() || !IsCased(text[k]) ? kFinalSigma : kSmallSigma;
}

}  // namespace

std::u32string DecodeUtf8(absl::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int length = 0;
    char32_t c = 0;
    char32_t min = 0;
    if ((b & 0xE0) == 0xC0) {
      length = 2, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      length = 3, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      length = 4, c = b & 0x07, min = 0x10000;
    }
    bool valid = length > 0 && i + length <= n;
    for (int k = 1; valid && k < length; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) {
        valid = false;
      } else {
        c = (c << 6) | (s[i + k] & 0x3F);
      }
    }
    valid = valid && c >= min && c <= 0x10FFFF && !(c >= 0xD800 && c < 0xE000);
    if (valid) {
      out.push_back(c);
      i += length;
    } else {
      out.push_back(kReplacement);
      ++i;
    }
  }
  return out;
}

void AppendUtf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) AppendUtf8(c, out);
  return out;
}

bool IsPythonSpace(char32_t c) { return InRanges(kSpace, c); }
bool IsPythonWord(char32_t c) { return InRanges(kWord, c); }
bool IsPythonDecimal(char32_t c) { return InRanges(kDecimal, c); }

bool IsAsciiPunctuation(char32_t c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

char32_t SimpleLower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
  if (c == kCapitalIWithDot) return 'i';
  const CodePointPair* end = std::end(kLowercase);
  const CodePointPair* it =
      std::lower_bound(std::begin(kLowercase), end, c,
                       [](const CodePointPair& pair, char32_t value) { return pair.from < value; });
  return it != end && it->from == c ? it->to : c;
}

std::u32string PythonLower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == kCapitalSigma) {
      out.push_back(LowerCapitalSigma(text, i));
    } else if (c == kCapitalIWithDot) {
      out.push_back('i');
      out.push_back(kCombiningDotAbove);
    } else {
      out.push_back(SimpleLower(c));
    }
  }
  return out;
}

std::string PythonLower(absl::string_view utf8) {
  return EncodeUtf8(PythonLower(DecodeUtf8(utf8)));
}

bool IgnoreCaseEquals(char32_t c, char32_t p) {
  if (c == p) return true;
  const char32_t lc = SimpleLower(c);
  const char32_t lp = SimpleLower(p);
  if (lc == lp) return true;
  for (const CodePointPair& extra : kIgnoreCaseExtra) {
    if (extra.from == lc && extra.to == lp) return true;
  }
  return false;
}

std::u32string_view PythonStrip(std::u32string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && IsPythonSpace(text[begin])) ++begin;
  while (end > begin && IsPythonSpace(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

std::vector<std::u32string_view> PythonSplit(std::u32string_view text) {
  std::vector<std::u32string_view> parts;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && IsPythonSpace(text[i])) ++i;
    const size_t begin = i;
    while (i < text.size() && !IsPythonSpace(text[i])) ++i;
    if (i > begin) parts.push_back(text.substr(begin, i - begin));
  }
  return parts;
}

}  // namespace prolong::evaluator::metrics::internal
