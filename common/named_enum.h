// Enums that flags, specs and logs spell by name: one table of (value, name) pairs gives a
// value's name, the list of names, and parsing whose error lists what is accepted.
//
//   constexpr EnumName<CpScheme> kCpSchemes[] = {{CpScheme::kAllGather, "all-gather"}, ...};
//   NameOf(kCpSchemes, scheme); NamesOf(kCpSchemes); ParseName(kCpSchemes, text, "scheme");
#ifndef PROLONG_COMMON_NAMED_ENUM_H_
#define PROLONG_COMMON_NAMED_ENUM_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace prolong {

template <typename Enum>
struct EnumName {
  Enum value;
  absl::string_view name;
};

// "unknown" for a value the table lacks.
template <typename Enum, size_t N>
absl::string_view NameOf(const EnumName<Enum> (&table)[N], Enum value) {
  for (const EnumName<Enum>& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "unknown";
}

// In the table's order.
template <typename Enum, size_t N>
std::vector<std::string> NamesOf(const EnumName<Enum> (&table)[N]) {
  std::vector<std::string> names;
  for (const EnumName<Enum>& entry : table) names.emplace_back(entry.name);
  return names;
}

// INVALID_ARGUMENT `unknown <what> "<name>"; expected one of <names>` for a name not in the
// table.
template <typename Enum, size_t N>
absl::StatusOr<Enum> ParseName(const EnumName<Enum> (&table)[N], absl::string_view name,
                               absl::string_view what) {
  for (const EnumName<Enum>& entry : table) {
    if (entry.name == name) return entry.value;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown ", what, " \"", name, "\"; expected one of ", absl::StrJoin(NamesOf(table), ", ")));
}

}  // namespace prolong

#endif  // PROLONG_COMMON_NAMED_ENUM_H_
