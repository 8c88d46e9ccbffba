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

class Packer {
 public:
  // INVALID_ARGUMENT naming the field for seq_len < 2 or a negative length or minimum.
  static absl::StatusOr<Packer> Create(Packing packing, std::vector<int64_t> lengths,
                                       int64_t seq_len, int64_t min_doc_tokens, uint64_t seed);

  // The pieces of the next sequence of this epoch, in order; empty once the epoch is done.
  std::vector<Piece> Next();

  // How many sequences one epoch yields.
  int64_t sequences_per_epoch() const { return sequences_per_epoch_; }

 private:
  Packer() = default;

  Packing packing_ = Packing::kShort;
  std::vector<int64_t> lengths_;
  int64_t seq_len_ = 0;
  // long: the chunks (document, chunk index) in order; short/sft: the documents in order.
  std::vector<std::pair<int64_t, int64_t>> chunks_;
  std::vector<int64_t> documents_;
  int64_t sequences_per_epoch_ = 0;
  // Where the next sequence starts.
  size_t cursor_ = 0;
  int64_t offset_ = 0;
};

}  // namespace prolong::plan

#endif  // PROLONG_DATAMIXER_PLAN_PACK_H_
