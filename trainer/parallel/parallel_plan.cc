#include "trainer/parallel/parallel_plan.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace prolong::parallel {
namespace {

constexpr ActivationCheckpointing kCheckpointings[] = {
    ActivationCheckpointing::kAuto, ActivationCheckpointing::kOff, ActivationCheckpointing::kFull,
    ActivationCheckpointing::kSelective};
constexpr Precision kPrecisions[] = {Precision::kAuto, Precision::kFp32, Precision::kBf16};

}  // namespace

ParallelPlan ResolveAuto(ParallelPlan plan, int64_t seq_len, bool gpu) {
  if (plan.activation_checkpointing == ActivationCheckpointing::kAuto) {
    plan.activation_checkpointing = seq_len >= kAutoCheckpointingTokens
                                        ? ActivationCheckpointing::kFull
                                        : ActivationCheckpointing::kOff;
  }
  if (plan.precision == Precision::kAuto) plan.precision = gpu ? Precision::kBf16 : Precision::kFp32;
  return plan;
}

absl::string_view ActivationCheckpointingName(ActivationCheckpointing checkpointing) {
  switch (checkpointing) {
    case ActivationCheckpointing::kAuto:
      return "auto";
    case ActivationCheckpointing::kOff:
      return "off";
    case ActivationCheckpointing::kFull:
      return "on";
    case ActivationCheckpointing::kSelective:
      return "selective";
  }
  return "unknown";
}

std::vector<std::string> ActivationCheckpointingNames() {
  std::vector<std::string> names;
  for (ActivationCheckpointing c : kCheckpointings) names.emplace_back(ActivationCheckpointingName(c));
  return names;
}

absl::StatusOr<ActivationCheckpointing> ParseActivationCheckpointing(absl::string_view name) {
  for (ActivationCheckpointing c : kCheckpointings) {
    if (name == ActivationCheckpointingName(c)) return c;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown activation checkpointing \"", name,
                                                 "\"; expected one of ",
                                                 absl::StrJoin(ActivationCheckpointingNames(), ", ")));
}

absl::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kAuto:
      return "auto";
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
  }
  return "unknown";
}

std::vector<std::string> PrecisionNames() {
  std::vector<std::string> names;
  for (Precision p : kPrecisions) names.emplace_back(PrecisionName(p));
  return names;
}

absl::StatusOr<Precision> ParsePrecision(absl::string_view name) {
  for (Precision p : kPrecisions) {
    if (name == PrecisionName(p)) return p;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown precision \"", name,
                                                 "\"; expected one of ",
                                                 absl::StrJoin(PrecisionNames(), ", ")));
}

}  // namespace prolong::parallel
