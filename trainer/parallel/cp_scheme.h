// How context-parallel attention moves keys and values between the ranks of a cp group (see
// context_parallel_attention.h for the schemes and when to use which), and the spelling
// launchers and flags use for them. No LibTorch here.
//
// Thread-safe: the functions keep no state.
#ifndef PROLONG_TRAINER_PARALLEL_CP_SCHEME_H_
#define PROLONG_TRAINER_PARALLEL_CP_SCHEME_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::parallel {

enum class CpScheme {
  kAllGather,  // "all-gather"
  kRing,       // "ring"
  kUlysses,    // "ulysses": heads split instead of the sequence (attention heads must divide)
};

// The scheme's name as --cp-scheme spells it.
absl::string_view CpSchemeName(CpScheme scheme);

// Every scheme's name, in declaration order.
std::vector<std::string> CpSchemeNames();

// INVALID_ARGUMENT naming the accepted values for anything but a scheme's name.
absl::StatusOr<CpScheme> ParseCpScheme(absl::string_view name);

// Whether `scheme` can split a model with these heads over `cp` ranks: Ulysses gives each rank
// heads / cp query heads and needs the kv heads to split too, or cp to be a multiple of them
// (each kv head then serves several ranks). INVALID_ARGUMENT saying so; OK for the other
// schemes, which take any head counts.
absl::Status CheckCpHeads(CpScheme scheme, int64_t attention_heads, int64_t kv_heads, int cp);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_CP_SCHEME_H_
