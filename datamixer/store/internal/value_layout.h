// How a shard lays out a document's tokens and loss mask as RocksDB values.
//
// A document of at most `chunk_tokens` tokens is one value under its key, domain '\0' id: its
// tokens as EncodeTokens writes them, its mask as one byte a token. A longer document is stored
// in chunks, so that reading a slice reads and decompresses only the chunks it overlaps: under
// its key a head (kChunkedMarker, varint length, varint chunk_tokens), and under
// domain '\0' id '\0' index (4 bytes, big-endian, so chunks sort in order after the head) chunk
// `index`, tokens [index * chunk_tokens, (index + 1) * chunk_tokens) encoded as a whole value
// would be (each chunk at its own narrowest width). Masks follow the tokens' layout.
//
// A whole token value starts with its width (2, 3 or 4) and a whole mask with 0 or 1, never
// with the marker: stores written before chunking existed hold only whole values and read as
// they always did.
#ifndef PROLONG_DATAMIXER_STORE_INTERNAL_VALUE_LAYOUT_H_
#define PROLONG_DATAMIXER_STORE_INTERNAL_VALUE_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace prolong::store::internal {

inline constexpr char kChunkedMarker = 'C';

std::string DocumentKey(absl::string_view domain, absl::string_view id);
std::string ChunkKey(absl::string_view document_key, int64_t index);

void PutVarint(std::string& out, uint64_t value);
// Consumes one varint from the front of `in`; false if it is truncated or too long.
bool GetVarint(absl::string_view& in, uint64_t* value);

// What the head of a chunked document says.
struct ChunkedHead {
  int64_t length = 0;        // Tokens in the document.
  int64_t chunk_tokens = 0;  // Tokens in each chunk but the last.

  int64_t chunks() const { return (length + chunk_tokens - 1) / chunk_tokens; }
  int64_t ChunkLength(int64_t index) const;
};

// Whether a value under a document's key is the head of a chunked document.
inline bool IsChunkedHead(absl::string_view value) {
  return !value.empty() && value[0] == kChunkedMarker;
}
std::string EncodeHead(const ChunkedHead& head);
// False for a malformed head (or one that describes no chunks: length <= chunk_tokens).
bool ParseHead(absl::string_view value, ChunkedHead* head);

// A width byte (2, 3 or 4: the narrowest that holds the largest id), then each id
// little-endian in `width` bytes.
std::string EncodeTokens(absl::Span<const uint32_t> tokens);
// The tokens an encoded value holds; -1 if it is malformed.
int64_t EncodedTokenCount(absl::string_view value);
// Tokens [first, first + count) of a value that EncodedTokenCount accepted, into `out`.
void DecodeTokens(absl::string_view value, int64_t first, int64_t count, uint32_t* out);

}  // namespace prolong::store::internal

#endif  // PROLONG_DATAMIXER_STORE_INTERNAL_VALUE_LAYOUT_H_
