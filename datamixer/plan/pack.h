// How one domain's documents become fixed-length training sequences, as ProLong packs them:
//   long   each sequence is one seq_len chunk of one document: a document of L >= seq_len
//          tokens gives floor(L / seq_len) chunks (its remainder is not used); chunks come in a
//          shuffled order.
//   short  documents in a shuffled order, concatenated; a sequence ends after seq_len tokens
//          and the cut-off rest of the document starts the next sequence.
//   sft    like short, but the cut-off rest is dropped: the next sequence starts with the next
//          document, so no conversation begins mid-way.
// Documents under min_doc_tokens are left out. Every sequence has exactly seq_len tokens; an
// epoch ends where the next sequence could not be filled. Shuffles are Fisher-Yates over
// std::mt19937_64, both fully specified, so a (lengths, seed) pair packs alike everywhere.
#ifndef PROLONG_DATAMIXER_PLAN_PACK_H_
#define PROLONG_DATAMIXER_PLAN_PACK_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"

namespace prolong::plan {

enum class Packing { kLong, kShort, kSft };

// Tokens [offset, offset + length) of document `document` (an index into the lengths given).
struct Piece {
  int64_t document = 0;
  int64_t offset = 0;
  int64_t length = 0;

  bool operator==(const Piece& other) const {
    return document == other.document && offset == other.offset && length == other.length;
  }
};

// Where a sequence starts in an epoch: the index of its first chunk (long) or document
// (short, sft) in the shuffled order, and the offset into that document.
struct PackPosition {
  int64_t cursor = 0;
  int64_t offset = 0;
};

class Packer {
 public:
  // INVALID_ARGUMENT naming the field for seq_len < 2 or a negative length or minimum.
  // `lengths` is shared, so that the packers of several epochs hold one copy.
  static absl::StatusOr<Packer> Create(Packing packing,
                                       std::shared_ptr<const std::vector<int64_t>> lengths,
                                       int64_t seq_len, int64_t min_doc_tokens, uint64_t seed);
  static absl::StatusOr<Packer> Create(Packing packing, std::vector<int64_t> lengths,
                                       int64_t seq_len, int64_t min_doc_tokens, uint64_t seed) {
    return Create(packing, std::make_shared<const std::vector<int64_t>>(std::move(lengths)),
                  seq_len, min_doc_tokens, seed);
  }

  // The pieces of the next sequence of this epoch, in order; empty once the epoch is done.
  std::vector<Piece> Next();

  // Where the next sequence starts. A plan keeps these instead of the pieces themselves.
  PackPosition position() const { return position_; }
  // The pieces of the sequence that starts at `position` (a value position() returned).
  std::vector<Piece> PiecesAt(PackPosition position) const { return Fill(position, nullptr); }

  // How many sequences one epoch yields.
  int64_t sequences_per_epoch() const { return sequences_per_epoch_; }

 private:
  Packer() = default;

  // The pieces of the sequence at `position` (empty if the epoch cannot fill it), and where
  // the following one starts.
  std::vector<Piece> Fill(PackPosition position, PackPosition* next) const;

  Packing packing_ = Packing::kShort;
  std::shared_ptr<const std::vector<int64_t>> lengths_;
  int64_t seq_len_ = 0;
  // long: the chunks (document, chunk index) in order; short/sft: the documents in order.
  // 32-bit, as a plan holds one of these per epoch of each domain (tens of millions of short
  // documents).
  std::vector<std::pair<int32_t, int32_t>> chunks_;
  std::vector<int32_t> documents_;
  int64_t sequences_per_epoch_ = 0;
  PackPosition position_;
};

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_PACK_H_
