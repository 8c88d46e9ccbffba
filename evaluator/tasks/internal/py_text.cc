#include "evaluator/tasks/internal/py_text.h"

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace prolong::evaluator::tasks::internal {
namespace {

// The length of the whitespace character starting at text[i] (str.isspace), or 0.
size_t WhitespaceAt(absl::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) return 1;
  auto code_point = [&](size_t length) -> uint32_t {
    if (i + length > text.size()) return 0;
    uint32_t cp = c & (length == 2 ? 0x1f : 0x0f);
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (next & 0x3f);
    }
    return cp;
  };
  if (c == 0xc2) {
    const uint32_t cp = code_point(2);
    return (cp == 0x85 || cp == 0xa0) ? 2 : 0;
  }
  if (c == 0xe1 || c == 0xe2 || c == 0xe3) {
    const uint32_t cp = code_point(3);
    const bool space = cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
                       cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
    return space ? 3 : 0;
  }
  return 0;
}

// The start of the whitespace character that ends at text[end - 1], or `end` if none does.
size_t WhitespaceBefore(absl::string_view text, size_t end) {
  for (size_t length = 1; length <= 3 && length <= end; ++length) {
    if (WhitespaceAt(text, end - length) == length) return end - length;
  }
  return end;
}

uint32_t DigestLow31(absl::string_view text) {
  Sha256 hasher;
  hasher.Update(text);
  const std::string digest = hasher.Finish();
  // The digest read as a big-endian integer, modulo 2**31: its last four bytes.
  uint32_t low = 0;
  for (size_t i = digest.size() - 4; i < digest.size(); ++i) {
    low = (low << 8) | static_cast<unsigned char>(digest[i]);
  }
  return low & 0x7fffffffU;
}

}  // namespace

absl::StatusOr<std::string> FormatTemplate(absl::string_view fmt,
                                           const nlohmann::ordered_json& fields) {
  std::string out;
  out.reserve(fmt.size());
  for (size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("template: single '}' at offset ", i, " (Python's ValueError)"));
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    const size_t close = fmt.find('}', i + 1);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("template: unmatched '{' at offset ", i, " (Python's ValueError)"));
    }
    const std::string name(fmt.substr(i + 1, close - i - 1));
    if (name.empty() || name.find_first_of("{[.!:") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("template: field '", name, "' is not a plain name"));
    }
    auto it = fields.find(name);
    if (it == fields.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("template field '", name, "' is missing from the example"));
    }
    out += PyStr(*it);
    i = close;
  }
  return out;
}

std::string PyStrip(absl::string_view text) {
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t length = WhitespaceAt(text, begin);
    if (length == 0) break;
    begin += length;
  }
  size_t end = text.size();
  while (end > begin) {
    const size_t start = WhitespaceBefore(text, end);
    if (start == end) break;
    end = start;
  }
  return std::string(text.substr(begin, end - begin));
}

std::string CollapseWhitespace(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_space = false;
  for (size_t i = 0; i < text.size();) {
    const size_t length = WhitespaceAt(text, i);
    if (length > 0) {
      if (!in_space) out.push_back(' ');
      in_space = true;
      i += length;
    } else {
      out.push_back(text[i]);
      in_space = false;
      ++i;
    }
  }
  return out;
}

uint32_t Sha256Mod2To31(absl::string_view text) { return DigestLow31(text); }

uint32_t Sha256PlusSeedMod2To31(absl::string_view text, uint64_t seed) {
  return static_cast<uint32_t>((static_cast<uint64_t>(DigestLow31(text)) + seed) & 0x7fffffffU);
}

std::string PyStr(const nlohmann::ordered_json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return value.dump();
  if (value.is_boolean()) return value.get<bool>() ? "True" : "False";
  if (value.is_null()) return "None";
  return value.dump();
}

}  // namespace prolong::evaluator::tasks::internal
