// Byte-pair merging as tiktoken defines it: repeatedly merge the adjacent pair of parts whose
// concatenation has the lowest rank, the leftmost such pair on ties, until no concatenation
// has a rank. Two implementations with identical results: a linear scan for short pieces and a
// heap for long ones, where the scan would be quadratic (a 1 MB run of spaces is one piece).
#ifndef PROLONG_DATAMIXER_TOKENIZER_INTERNAL_BYTE_PAIR_H_
#define PROLONG_DATAMIXER_TOKENIZER_INTERNAL_BYTE_PAIR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace prolong::tokenizer::internal {

using RankMap = absl::flat_hash_map<std::string, uint32_t>;

// Appends the ids of `piece` (at least 2 bytes, every single byte ranked) to `out`.
void BytePairEncodeByScan(const RankMap& ranks, absl::string_view piece,
                          std::vector<uint32_t>& out);
void BytePairEncodeByHeap(const RankMap& ranks, absl::string_view piece,
                          std::vector<uint32_t>& out);

// Chooses between the two by length.
void BytePairEncode(const RankMap& ranks, absl::string_view piece, std::vector<uint32_t>& out);

}  // namespace prolong::tokenizer::internal

#endif  // PROLONG_DATAMIXER_TOKENIZER_INTERNAL_BYTE_PAIR_H_
