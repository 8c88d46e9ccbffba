// The few Python string behaviours HELMET's prompts depend on: `str.format` with named fields,
// `str.strip()`, and its per-example seeds from SHA-256 digests.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_PY_TEXT_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_PY_TEXT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace prolong::evaluator::tasks::internal {

// `fmt.format(**fields)` for templates with named fields only ("{context}", "{{" and "}}" for
// braces). A string field is inserted as is, an integer in decimal, anything else as compact
// JSON. INVALID_ARGUMENT naming a field the object lacks (Python's KeyError) or a malformed
// brace.
absl::StatusOr<std::string> FormatTemplate(absl::string_view fmt,
                                           const nlohmann::ordered_json& fields);

// Python's str.strip() with no argument: removes leading and trailing whitespace, Unicode
// whitespace included (U+00A0, U+2000..U+200A, U+3000, ...). Jinja's `trim` does the same.
std::string PyStrip(absl::string_view text);

// int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 2**31: the seed HELMET derives
// from a question id or an ICL text.
uint32_t Sha256Mod2To31(absl::string_view text);

// re.sub(r"\s+", " ", text): each run of whitespace (str.isspace) becomes one space.
std::string CollapseWhitespace(absl::string_view text);

// (int(sha256(text).hexdigest(), 16) + seed) % 2**31, HELMET's ICL per-example seed.
uint32_t Sha256PlusSeedMod2To31(absl::string_view text, uint64_t seed);

// Python's str() of a JSON scalar as HELMET's code would see it: a string as is, an integer in
// decimal, true/false as True/False; other values as compact JSON.
std::string PyStr(const nlohmann::ordered_json& value);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_PY_TEXT_H_
