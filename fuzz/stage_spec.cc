// A stage spec file (the trainer's and `prolongctl data plan`'s --stage) as an operator writes
// it: the first byte picks the file's extension (.yaml, .json, .textproto, .pbtxt), which
// picks the format the loader reads; the rest is the file. Any bytes either fail naming the
// file, or give a StageSpec that round-trips through text format and the wire (spec_file.h) and
// that the datamixer's planner, over a small fixed data index, either refuses naming a field of
// the stage ("stage.mixture[1].domain: ...") or plans as stage_plan.h promises: the batches and
// steps the stage asks for, one usage per mixture component, more than one epoch of a domain
// only with allow_repetition, and sequences of exactly seq_len tokens cut from real documents.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "datamixer/plan/data_index.h"
#include "datamixer/plan/stage_plan.h"
#include "fuzz/check.h"
#include "fuzz/spec_file.h"
#include "prolong/v1/run_spec.pb.h"

namespace {

using prolong::plan::DataIndex;
using prolong::plan::DomainIndex;
using prolong::plan::StagePlan;
using prolong::v1::StageSpec;

// Plans the planner refuses (stage_plan.cc's kMaxSequences) cost nothing; plans it accepts cost
// time in proportion to their sequences, so larger ones than this are left out.
constexpr int64_t kPlannerLimit = int64_t{1} << 28;
constexpr int64_t kFuzzLimit = int64_t{1} << 14;

DomainIndex Domain(std::string name, std::vector<int64_t> lengths) {
  DomainIndex domain;
  domain.name = std::move(name);
  domain.ids = std::string(16 * lengths.size(), 'x');
  for (int64_t length : lengths) domain.tokens += length;
  domain.lengths = std::make_shared<const std::vector<int64_t>>(std::move(lengths));
  return domain;
}

// The recipes' domain names, with documents long and short enough for every packing.
std::shared_ptr<const DataIndex> Data() {
  static const auto* const data = [] {
    auto* index = new std::shared_ptr<DataIndex>(std::make_shared<DataIndex>());
    (*index)->fingerprint = "fuzz";
    (*index)->domains = {
        Domain("books", {70000, 9000, 4096, 2047, 300}),
        Domain("chat", {40, 90, 1, 300, 2000}),
        Domain("code_repos", {131072, 5000, 1024, 0}),
        Domain("fineweb", {12, 7, 33, 64, 129, 1, 2, 511, 16, 3}),
    };
    return index;
  }();
  return *data;
}

// The plan's sequences, as the harness counts them: -1 when the planner refuses the stage
// before planning, else steps * sequences per batch (saturating at kPlannerLimit + 1).
int64_t PlannedSequences(const StageSpec& stage) {
  const int64_t seq_len = stage.seq_len(), batch = stage.batch_tokens();
  if (seq_len < 2 || batch <= 0 || batch % seq_len != 0 || stage.total_tokens() <= 0) return -1;
  const int64_t per_batch = batch / seq_len;
  const int64_t steps = stage.total_tokens() / batch + (stage.total_tokens() % batch != 0);
  if (steps > kPlannerLimit / per_batch) return kPlannerLimit + 1;
  return steps * per_batch;
}

// Messages (the stage as text) are built only when a check fails.
void CheckPlan(const StageSpec& stage, const StagePlan& plan) {
  const int64_t per_batch = stage.batch_tokens() / stage.seq_len();
  FUZZ_CHECK(plan.sequences_per_batch() == per_batch, stage.ShortDebugString());
  FUZZ_CHECK(plan.steps() == PlannedSequences(stage) / per_batch, stage.ShortDebugString());
  FUZZ_CHECK(plan.domains().size() == static_cast<size_t>(stage.mixture_size()),
             stage.ShortDebugString());
  int64_t sequences = 0;
  for (const auto& usage : plan.domains()) {
    sequences += usage.sequences;
    int64_t tokens = 0;
    FUZZ_CHECK(!__builtin_mul_overflow(usage.sequences, stage.seq_len(), &tokens) &&
                   usage.tokens == tokens,
               stage.ShortDebugString());
    FUZZ_CHECK(usage.epochs <= 1 || stage.allow_repetition(), stage.ShortDebugString());
  }
  FUZZ_CHECK(sequences == PlannedSequences(stage), stage.ShortDebugString());
  for (const int64_t step : {int64_t{0}, plan.steps() - 1}) {
    const auto batch = plan.GlobalBatch(step);
    FUZZ_CHECK(static_cast<int64_t>(batch.size()) == per_batch, stage.ShortDebugString());
    for (const auto& sequence : batch) {
      FUZZ_CHECK(sequence.domain >= 0 && sequence.domain < stage.mixture_size(),
                 stage.ShortDebugString());
      const auto& lengths = *plan.domains()[sequence.domain].data->lengths;
      int64_t tokens = 0;
      for (const auto& piece : sequence.pieces) {
        FUZZ_CHECK(piece.document >= 0 && piece.document < static_cast<int64_t>(lengths.size()),
                   stage.ShortDebugString());
        FUZZ_CHECK(piece.length > 0 && piece.offset >= 0 &&
                       piece.offset + piece.length <= lengths[piece.document],
                   stage.ShortDebugString());
        tokens += piece.length;
      }
      FUZZ_CHECK(tokens == stage.seq_len(), stage.ShortDebugString());
    }
  }
}

// "stage.mixture[1].domain: ..." names mixture; the name must be one of StageSpec's fields.
bool NamesStageField(absl::string_view message) {
  if (!absl::ConsumePrefix(&message, "stage.")) return false;
  const absl::string_view name = message.substr(0, message.find_first_of("[.: "));
  return StageSpec::descriptor()->FindFieldByName(std::string(name)) != nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  StageSpec stage;
  if (!prolong::fuzz::ReadSpecFile(data[0], text, &stage)) return 0;

  const int64_t sequences = PlannedSequences(stage);
  if (sequences > kFuzzLimit && sequences <= kPlannerLimit) return 0;
  const auto plan = StagePlan::Build(stage, /*seed=*/7, Data());
  if (!plan.ok()) {
    FUZZ_CHECK(NamesStageField(plan.status().message()), plan.status().ToString());
    return 0;
  }
  CheckPlan(stage, **plan);
  return 0;
}
