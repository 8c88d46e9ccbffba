#include "trainer/parallel/parallel_plan.h"

#include "absl/strings/str_cat.h"
#include "common/named_enum.h"

namespace prolong::parallel {
namespace {

constexpr EnumName<ActivationCheckpointing> kCheckpointings[] = {
    {ActivationCheckpointing::kAuto, "auto"},
    {ActivationCheckpointing::kOff, "off"},
    {ActivationCheckpointing::kFull, "on"},
    {ActivationCheckpointing::kSelective, "selective"},
};
constexpr EnumName<Precision> kPrecisions[] = {
    {Precision::kAuto, "auto"}, {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}};

}  // namespace

ParallelPlan ResolveAuto(ParallelPlan plan, int64_t seq_len, bool gpu) {
  if (plan.activation_checkpointing == ActivationCheckpointing::kAuto) {
    plan.activation_checkpointing = seq_len >= kAutoCheckpointingTokens || plan.shard_weights
                                        ? ActivationCheckpointing::kFull
                                        : ActivationCheckpointing::kOff;
  }
  if (plan.precision == Precision::kAuto)
    plan.precision = gpu ? Precision::kBf16 : Precision::kFp32;
  return plan;
}

absl::Status CheckWeightSharding(const ParallelPlan& plan, int world_size) {
  const int group = plan.shard_group_size;
  if (group < 0 || group > world_size || (group > 0 && world_size % group != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("shard_group_size (", group,
                                                   ") must divide the world size (", world_size,
                                                   "), or be 0 for the whole world"));
  }
  if (plan.shard_weights && plan.activation_checkpointing == ActivationCheckpointing::kOff) {
    return absl::InvalidArgumentError(
        "shard_weights gathers each layer's weights again for backward by recomputing the "
        "layer: activation_checkpointing must be on, selective or auto, not off");
  }
  return absl::OkStatus();
}

absl::string_view ActivationCheckpointingName(ActivationCheckpointing checkpointing) {
  return NameOf(kCheckpointings, checkpointing);
}

std::vector<std::string> ActivationCheckpointingNames() { return NamesOf(kCheckpointings); }

absl::StatusOr<ActivationCheckpointing> ParseActivationCheckpointing(absl::string_view name) {
  return ParseName(kCheckpointings, name, "activation checkpointing");
}

absl::string_view PrecisionName(Precision precision) { return NameOf(kPrecisions, precision); }

std::vector<std::string> PrecisionNames() { return NamesOf(kPrecisions); }

absl::StatusOr<Precision> ParsePrecision(absl::string_view name) {
  return ParseName(kPrecisions, name, "precision");
}

}  // namespace prolong::parallel
