// Python's str semantics that HELMET's scoring depends on, on Unicode code points: lower(),
// strip(), split(), isspace(), and what `re` calls \w, \d and an IGNORECASE literal match on
// str patterns. Tables come from Debian's Python 3.11 (Unicode 14.0), see
// gen_python_unicode.py. All functions are pure and thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_INTERNAL_PYTHON_TEXT_H_
#define PROLONG_EVALUATOR_METRICS_INTERNAL_PYTHON_TEXT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"

namespace prolong::evaluator::metrics::internal {

// UTF-8 to code points; an invalid byte decodes to U+FFFD (JSON input is valid UTF-8 already).
std::u32string DecodeUtf8(absl::string_view text);
std::string EncodeUtf8(std::u32string_view code_points);
void AppendUtf8(char32_t code_point, std::string& out);

bool IsPythonSpace(char32_t c);       // str.isspace()
bool IsPythonWord(char32_t c);        // re's \w on str: str.isalnum() or '_'
bool IsPythonDecimal(char32_t c);     // re's \d on str: str.isdecimal()
bool IsAsciiPunctuation(char32_t c);  // string.punctuation

// The one-to-one lowercase mapping `re` compares under IGNORECASE.
char32_t SimpleLower(char32_t c);

// str.lower(): the full mapping (U+0130 becomes "i" + U+0307) with the final-sigma rule.
std::u32string PythonLower(std::u32string_view text);
std::string PythonLower(absl::string_view utf8);

// Whether text character `c` matches pattern character `p` in a `re` pattern compiled with
// re.IGNORECASE on str (equal simple lowercase, or one of re's extra case equivalences such as
// "s" and U+017F).
bool IgnoreCaseEquals(char32_t c, char32_t p);

// str.strip() and str.split() with no arguments.
std::u32string_view PythonStrip(std::u32string_view text);
std::vector<std::u32string_view> PythonSplit(std::u32string_view text);

}  // namespace prolong::evaluator::metrics::internal

#endif  // PROLONG_EVALUATOR_METRICS_INTERNAL_PYTHON_TEXT_H_
