#include "trainer/parallel/cp_scheme.h"

#include "common/named_enum.h"

namespace prolong::parallel {
namespace {

constexpr EnumName<CpScheme> kCpSchemes[] = {{CpScheme::kAllGather, "all-gather"},
                                             {CpScheme::kRing, "ring"}};

}  // namespace

absl::string_view CpSchemeName(CpScheme scheme) { return NameOf(kCpSchemes, scheme); }

std::vector<std::string> CpSchemeNames() { return NamesOf(kCpSchemes); }

absl::StatusOr<CpScheme> ParseCpScheme(absl::string_view name) {
  return ParseName(kCpSchemes, name, "context-parallel scheme");
}

}  // namespace prolong::parallel
