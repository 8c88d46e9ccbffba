#include "datamixer/plan/stage_plan.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "datamixer/plan/blend.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace prolong::plan {
namespace {

// A plan holds one record per sequence; beyond this a stage is surely a mistake (ProLong's
// 20B-token stage at 64K is 305K sequences).
constexpr int64_t kMaxSequences = int64_t{1} << 28;

void AppendLittleEndian(std::string& bytes, uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(value >> (8 * i)));
}

// The shuffle seed of one epoch of one domain: spelled out byte by byte so that it is the same
// on every platform.
uint64_t EpochSeed(uint64_t seed, const std::string& domain, int64_t epoch) {
  std::string input;
  AppendLittleEndian(input, seed);
  input += domain;
  input.push_back('\0');
  AppendLittleEndian(input, static_cast<uint64_t>(epoch));
  Sha256 hasher;
  hasher.Update(input);
  const std::string digest = hasher.Finish();
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{static_cast<uint8_t>(digest[i])} << (8 * i);
  return value;
}

absl::StatusOr<Packing> ToPacking(v1::Packing packing, int index) {
  switch (packing) {
    case v1::PACKING_LONG:
      return Packing::kLong;
    case v1::PACKING_SHORT:
      return Packing::kShort;
    case v1::PACKING_SFT:
      return Packing::kSft;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("stage.mixture[", index, "].packing: must be long, short or sft"));
  }
}

std::string DomainNames(const DataIndex& data) {
  std::vector<std::string> names;
  for (const DomainIndex& domain : data.domains) names.push_back(domain.name);
  return names.empty() ? "the store is empty" : absl::StrCat("it has ", absl::StrJoin(names, ", "));
}

// Why one epoch of a domain yields no sequence at all.
std::string WhyEmpty(Packing packing, int64_t seq_len, int64_t min_doc_tokens) {
  if (packing == Packing::kLong) {
    return absl::StrCat("no document has ", std::max(seq_len, min_doc_tokens),
                        " tokens or more (long packing takes whole seq_len chunks)");
  }
  return absl::StrCat("its documents",
                      min_doc_tokens > 0 ? absl::StrCat(" of ", min_doc_tokens, "+ tokens") : "",
                      " do not fill one ", seq_len, "-token sequence");
}

}  // namespace

std::string PlanId(const std::string& fingerprint, const v1::StageSpec& stage, uint64_t seed) {
  std::string serialized;
  {
    google::protobuf::io::StringOutputStream stream(&serialized);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    stage.SerializeToCodedStream(&coded);
  }
  Sha256 hasher;
  hasher.Update(fingerprint);
  hasher.Update("", 1);
  hasher.Update(serialized);
  std::string seed_bytes;
  AppendLittleEndian(seed_bytes, seed);
  hasher.Update(seed_bytes);
  return absl::BytesToHexString(hasher.Finish().substr(0, 16));
}

double SumOfSquaredLengths(const std::vector<Piece>& pieces) {
  double sum = 0;
  for (const Piece& piece : pieces) sum += static_cast<double>(piece.length) * piece.length;
  return sum;
}

std::vector<double> AttentionCosts(const std::vector<PlannedSequence>& batch) {
  std::vector<double> costs;
  costs.reserve(batch.size());
  for (const PlannedSequence& sequence : batch) {
    costs.push_back(SumOfSquaredLengths(sequence.pieces));
  }
  return costs;
}

absl::StatusOr<std::shared_ptr<const StagePlan>> StagePlan::Build(
    const v1::StageSpec& stage, uint64_t seed, std::shared_ptr<const DataIndex> data) {
  const int64_t seq_len = stage.seq_len();
  if (seq_len < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage.seq_len: must be at least 2, got ", seq_len));
  }
  if (stage.batch_tokens() <= 0 || stage.batch_tokens() % seq_len != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage.batch_tokens: must be a positive multiple of stage.seq_len (", seq_len,
                     "), got ", stage.batch_tokens()));
  }
  if (stage.total_tokens() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage.total_tokens: must be positive, got ", stage.total_tokens()));
  }
  std::shared_ptr<StagePlan> plan(new StagePlan());
  plan->stage_ = stage;
  plan->seed_ = seed;
  plan->sequences_per_batch_ = stage.batch_tokens() / seq_len;
  // Rounded up without total_tokens + batch_tokens - 1, which overflows for the largest totals.
  plan->steps_ = stage.total_tokens() / stage.batch_tokens() +
                 (stage.total_tokens() % stage.batch_tokens() != 0 ? 1 : 0);
  // Every token count below (a domain's tokens, a shortfall) is at most steps x batch_tokens.
  if (plan->steps_ > std::numeric_limits<int64_t>::max() / stage.batch_tokens()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stage.total_tokens: ", stage.total_tokens(), " rounds up to ", plan->steps_,
                     " batches of ", stage.batch_tokens(), " tokens, more than 2^63 - 1 tokens"));
  }
  if (plan->steps_ > kMaxSequences / plan->sequences_per_batch_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stage.total_tokens: ", plan->steps_, " batches of ", plan->sequences_per_batch_,
        " sequences is more than a plan holds (", kMaxSequences, " sequences)"));
  }

  std::vector<double> proportions;
  for (int i = 0; i < stage.mixture_size(); ++i) {
    const v1::MixtureComponent& component = stage.mixture(i);
    const std::string field = absl::StrCat("stage.mixture[", i, "]");
    const DomainIndex* domain = data->Find(component.domain());
    if (domain == nullptr) {
      return absl::NotFoundError(absl::StrCat(field, ".domain: no domain \"", component.domain(),
                                              "\" in the data; ", DomainNames(*data)));
    }
    for (int j = 0; j < i; ++j) {
      if (stage.mixture(j).domain() == component.domain()) {
        return absl::InvalidArgumentError(absl::StrCat(field, ".domain: \"", component.domain(),
                                                       "\" is already stage.mixture[", j, "]"));
      }
    }
    if (component.min_doc_tokens() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".min_doc_tokens: must not be negative"));
    }
    ASSIGN_OR_RETURN(const Packing packing, ToPacking(component.packing(), i));
    plan->domains_.push_back({domain, packing, 0, 0, 0});
    proportions.push_back(component.proportion());
  }
  absl::StatusOr<Blend> blend = Blend::Create(proportions, plan->sequences_per_batch_);
  if (!blend.ok()) {
    return absl::Status(blend.status().code(), absl::StrCat("stage.", blend.status().message()));
  }

  // How many sequences each domain must give, and whether one epoch holds them.
  Blend counter = *blend;
  for (int64_t step = 0; step < plan->steps_; ++step) {
    const std::vector<int64_t> counts = counter.Next();
    for (size_t d = 0; d < counts.size(); ++d) plan->domains_[d].sequences += counts[d];
  }
  for (size_t d = 0; d < plan->domains_.size(); ++d) {
    DomainUsage& usage = plan->domains_[d];
    const v1::MixtureComponent& component = stage.mixture(static_cast<int>(d));
    ASSIGN_OR_RETURN(Packer packer, Packer::Create(usage.packing, usage.data->lengths, seq_len,
                                                   component.min_doc_tokens(),
                                                   EpochSeed(seed, usage.data->name, 0)));
    const int64_t available = packer.sequences_per_epoch();
    usage.tokens = usage.sequences * seq_len;
    if (usage.sequences > 0 && available == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("stage.mixture[", d, "] (domain ", usage.data->name,
                       "): ", WhyEmpty(usage.packing, seq_len, component.min_doc_tokens())));
    }
    if (usage.sequences > available && !stage.allow_repetition()) {
      const int64_t shortfall = usage.sequences - available;
      return absl::FailedPreconditionError(absl::StrCat(
          "stage.mixture[", d, "] (domain ", usage.data->name, "): the stage needs ",
          usage.sequences, " sequences of ", seq_len, " tokens from it, one epoch holds ",
          available, ": short by ", shortfall, " sequences (", shortfall * seq_len,
          " tokens); set stage.allow_repetition or lower its proportion"));
    }
    usage.epochs =
        available == 0 ? 0 : static_cast<double>(usage.sequences) / static_cast<double>(available);
    plan->packers_.push_back({std::move(packer)});
  }

  // Walk the stage: each batch's sequences, then their order within the batch.
  plan->sequences_.reserve(plan->steps_ * plan->sequences_per_batch_);
  std::vector<std::pair<double, SequenceRecord>> batch;
  for (int64_t step = 0; step < plan->steps_; ++step) {
    const std::vector<int64_t> counts = blend->Next();
    batch.clear();
    for (size_t d = 0; d < counts.size(); ++d) {
      std::vector<Packer>& epochs = plan->packers_[d];
      for (int64_t k = 0; k < counts[d]; ++k) {
        PackPosition start = epochs.back().position();
        std::vector<Piece> pieces = epochs.back().Next();
        if (pieces.empty()) {  // Epoch done; only reached with allow_repetition.
          const std::string& name = plan->domains_[d].data->name;
          ASSIGN_OR_RETURN(
              Packer next,
              Packer::Create(plan->domains_[d].packing, plan->domains_[d].data->lengths, seq_len,
                             stage.mixture(static_cast<int>(d)).min_doc_tokens(),
                             EpochSeed(seed, name, static_cast<int64_t>(epochs.size()))));
          epochs.push_back(std::move(next));
          start = epochs.back().position();
          pieces = epochs.back().Next();
        }
        const SequenceRecord record{static_cast<int32_t>(d),
                                    static_cast<int32_t>(epochs.size() - 1), start};
        batch.emplace_back(SumOfSquaredLengths(pieces), record);
      }
    }
    std::stable_sort(batch.begin(), batch.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [work, record] : batch) plan->sequences_.push_back(record);
  }
  plan->id_ = PlanId(data->fingerprint, stage, seed);
  plan->data_ = std::move(data);
  return plan;
}

PlannedSequence StagePlan::Sequence(int64_t index) const {
  const SequenceRecord& record = sequences_.at(index);
  return {index, record.domain, packers_[record.domain][record.epoch].PiecesAt(record.start)};
}

std::vector<PlannedSequence> StagePlan::GlobalBatch(int64_t step) const {
  std::vector<PlannedSequence> batch;
  batch.reserve(sequences_per_batch_);
  for (int64_t j = 0; j < sequences_per_batch_; ++j) {
    batch.push_back(Sequence(step * sequences_per_batch_ + j));
  }
  return batch;
}

}  // namespace prolong::plan
