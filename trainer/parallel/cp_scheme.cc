#include "trainer/parallel/cp_scheme.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace prolong::parallel {

absl::string_view CpSchemeName(CpScheme scheme) {
  switch (scheme) {
    case CpScheme::kAllGather:
      return "all-gather";
    case CpScheme::kRing:
      return "ring";
  }
  return "unknown";
}

std::vector<std::string> CpSchemeNames() {
  return {std::string(CpSchemeName(CpScheme::kAllGather)),
          std::string(CpSchemeName(CpScheme::kRing))};
}

absl::StatusOr<CpScheme> ParseCpScheme(absl::string_view name) {
  for (CpScheme scheme : {CpScheme::kAllGather, CpScheme::kRing}) {
    if (name == CpSchemeName(scheme)) return scheme;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown context-parallel scheme \"", name,
                                                 "\"; expected one of ",
                                                 absl::StrJoin(CpSchemeNames(), ", ")));
}

}  // namespace prolong::parallel
