#include "datamixer/store/internal/value_layout.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace prolong::store::internal {

std::string DocumentKey(absl::string_view domain, absl::string_view id) {
  return absl::StrCat(domain, absl::string_view("\0", 1), id);
}

std::string ChunkKey(absl::string_view document_key, int64_t index) {
  std::string key(document_key);
  key.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>(static_cast<uint64_t>(index) >> shift));
  }
  return key;
}

void PutVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

bool GetVarint(absl::string_view& in, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    *value |= uint64_t{byte & 0x7Fu} << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

int64_t ChunkedHead::ChunkLength(int64_t index) const {
  return std::min(chunk_tokens, length - index * chunk_tokens);
}

std::string EncodeHead(const ChunkedHead& head) {
  std::string out(1, kChunkedMarker);
  PutVarint(out, head.length);
  PutVarint(out, head.chunk_tokens);
  return out;
}

bool ParseHead(absl::string_view value, ChunkedHead* head) {
  if (!IsChunkedHead(value)) return false;
  value.remove_prefix(1);
  uint64_t length = 0, chunk_tokens = 0;
  if (!GetVarint(value, &length) || !GetVarint(value, &chunk_tokens) || !value.empty()) {
    return false;
  }
  // Bounds that also keep every product below int64's range.
  if (chunk_tokens == 0 || length <= chunk_tokens || length > (uint64_t{1} << 48)) return false;
  head->length = static_cast<int64_t>(length);
  head->chunk_tokens = static_cast<int64_t>(chunk_tokens);
  return true;
}

std::string EncodeTokens(absl::Span<const uint32_t> tokens) {
  const uint32_t max_id = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
  const int width = max_id < (1u << 16) ? 2 : max_id < (1u << 24) ? 3 : 4;
  std::string out(1 + tokens.size() * width, '\0');
  out[0] = static_cast<char>(width);
  char* p = out.data() + 1;
  for (uint32_t id : tokens) {
    for (int b = 0; b < width; ++b) *p++ = static_cast<char>(id >> (8 * b));
  }
  return out;
}

int64_t EncodedTokenCount(absl::string_view value) {
  const int width = value.empty() ? 0 : static_cast<uint8_t>(value[0]);
  if (width < 2 || width > 4 || (value.size() - 1) % width != 0) return -1;
  return static_cast<int64_t>((value.size() - 1) / width);
}

namespace {

template <int kWidth>
void DecodeWidth(const unsigned char* p, int64_t count, uint32_t* out) {
  for (int64_t i = 0; i < count; ++i, p += kWidth) {
    uint32_t id = 0;
    for (int b = 0; b < kWidth; ++b) id |= uint32_t{p[b]} << (8 * b);
    out[i] = id;
  }
}

}  // namespace

void DecodeTokens(absl::string_view value, int64_t first, int64_t count, uint32_t* out) {
  // One loop per width, so that the compiler unrolls the bytes of a token: a 512K-token
  // sequence is decoded on every read.
  const int width = static_cast<uint8_t>(value[0]);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(value.data()) + 1 + first * width;
  switch (width) {
    case 2:
      return DecodeWidth<2>(p, count, out);
    case 3:
      return DecodeWidth<3>(p, count, out);
    default:
      return DecodeWidth<4>(p, count, out);
  }
}

}  // namespace prolong::store::internal
