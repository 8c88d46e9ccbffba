#include "trainer/parallel/cp_scheme.h"

#include "absl/strings/str_cat.h"
#include "common/named_enum.h"

namespace prolong::parallel {
namespace {

constexpr EnumName<CpScheme> kCpSchemes[] = {{CpScheme::kAllGather, "all-gather"},
                                             {CpScheme::kRing, "ring"},
                                             {CpScheme::kUlysses, "ulysses"}};

}  // namespace

absl::string_view CpSchemeName(CpScheme scheme) { return NameOf(kCpSchemes, scheme); }

std::vector<std::string> CpSchemeNames() { return NamesOf(kCpSchemes); }

absl::StatusOr<CpScheme> ParseCpScheme(absl::string_view name) {
  return ParseName(kCpSchemes, name, "context-parallel scheme");
}

absl::Status CheckCpHeads(CpScheme scheme, int64_t attention_heads, int64_t kv_heads, int cp) {
  if (scheme != CpScheme::kUlysses || cp <= 1) return absl::OkStatus();
  if (attention_heads % cp != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cp-scheme ulysses splits the attention heads among the cp ranks: ", attention_heads,
        " heads do not divide among ", cp, " ranks (use all-gather or ring, or another --cp)"));
  }
  if (kv_heads % cp != 0 && cp % kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cp-scheme ulysses needs the ", kv_heads, " kv heads to divide among the ", cp,
        " cp ranks, or cp to be a multiple of them (use all-gather or ring, or another --cp)"));
  }
  return absl::OkStatus();
}

}  // namespace prolong::parallel
