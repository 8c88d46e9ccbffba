// How context-parallel attention moves keys and values between the ranks of a cp group (see
// context_parallel_attention.h for the schemes and when to use which), and the spelling
// launchers and flags use for them. No LibTorch here.
//
// Thread-safe: the functions keep no state.
#ifndef PROLONG_TRAINER_PARALLEL_CP_SCHEME_H_
#define PROLONG_TRAINER_PARALLEL_CP_SCHEME_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::parallel {

enum class CpScheme {
  kAllGather,  // "all-gather"
  kRing,       // "ring"
};

// The scheme's name as --cp-scheme spells it.
absl::string_view CpSchemeName(CpScheme scheme);

// Every scheme's name, in declaration order.
std::vector<std::string> CpSchemeNames();

// INVALID_ARGUMENT naming the accepted values for anything but a scheme's name.
absl::StatusOr<CpScheme> ParseCpScheme(absl::string_view name);

}  // namespace prolong::parallel

#endif  // PROLONG_TRAINER_PARALLEL_CP_SCHEME_H_
