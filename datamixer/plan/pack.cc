#include "datamixer/plan/pack.h"

#include <algorithm>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace prolong::plan {
namespace {

// Fisher-Yates with a fully specified generator (std::shuffle's algorithm is not specified).
template <typename T>
void Shuffle(std::vector<T>& items, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = items.size(); i > 1; --i) {
    std::swap(items[i - 1], items[rng() % i]);
  }
}

}  // namespace

absl::StatusOr<Packer> Packer::Create(Packing packing,
                                      std::shared_ptr<const std::vector<int64_t>> lengths,
                                      int64_t seq_len, int64_t min_doc_tokens, uint64_t seed) {
  if (seq_len < 2) {
    return absl::InvalidArgumentError(absl::StrCat("seq_len: must be at least 2, got ", seq_len));
  }
  if (min_doc_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_doc_tokens: must not be negative, got ", min_doc_tokens));
  }
  Packer packer;
  packer.packing_ = packing;
  packer.seq_len_ = seq_len;
  const int64_t minimum =
      std::max<int64_t>({min_doc_tokens, packing == Packing::kLong ? seq_len : 1, 1});
  if (lengths->size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lengths: ", lengths->size(), " documents, more than a domain may hold (2^31)"));
  }
  for (size_t i = 0; i < lengths->size(); ++i) {
    const int64_t length = (*lengths)[i];
    if (length < 0) return absl::InvalidArgumentError(absl::StrCat("lengths[", i, "]: negative"));
    if (length < minimum) continue;
    if (packing == Packing::kLong) {
      // 32 bits hold it: overflowing needs a document of 2^31 chunks (over 4G tokens).
      for (int64_t chunk = 0; chunk < length / seq_len; ++chunk) {
        packer.chunks_.emplace_back(static_cast<int32_t>(i), static_cast<int32_t>(chunk));
      }
    } else {
      packer.documents_.push_back(static_cast<int32_t>(i));
    }
  }
  packer.lengths_ = std::move(lengths);
  if (packing == Packing::kLong) {
    Shuffle(packer.chunks_, seed);
    packer.sequences_per_epoch_ = static_cast<int64_t>(packer.chunks_.size());
    return packer;
  }
  Shuffle(packer.documents_, seed);
  // Count by walking the epoch: the rule for sft depends on where documents are cut.
  PackPosition position;
  while (!packer.Fill(position, &position).empty()) ++packer.sequences_per_epoch_;
  return packer;
}

std::vector<Piece> Packer::Next() { return Fill(position_, &position_); }

std::vector<Piece> Packer::Fill(PackPosition position, PackPosition* next) const {
  std::vector<Piece> pieces;
  if (packing_ == Packing::kLong) {
    if (position.cursor >= static_cast<int64_t>(chunks_.size())) return pieces;
    const auto [document, chunk] = chunks_[position.cursor];
    pieces.push_back({document, int64_t{chunk} * seq_len_, seq_len_});
    if (next != nullptr) *next = {position.cursor + 1, 0};
    return pieces;
  }
  const std::vector<int64_t>& lengths = *lengths_;
  int64_t remaining = seq_len_;
  int64_t cursor = position.cursor;
  int64_t offset = position.offset;
  while (remaining > 0 && cursor < static_cast<int64_t>(documents_.size())) {
    const int64_t document = documents_[cursor];
    const int64_t take = std::min(remaining, lengths[document] - offset);
    pieces.push_back({document, offset, take});
    remaining -= take;
    offset += take;
    if (offset == lengths[document] || (packing_ == Packing::kSft && remaining == 0)) {
      ++cursor;  // Done with it, or (sft) its cut-off rest is dropped.
      offset = 0;
    }
  }
  if (remaining > 0) return {};  // The epoch cannot fill another sequence.
  if (next != nullptr) *next = {cursor, offset};
  return pieces;
}

}  // namespace prolong::plan
