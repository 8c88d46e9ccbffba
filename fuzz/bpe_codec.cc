// Byte-level BPE on arbitrary bytes, with a small vocabulary of our own (every byte, merges that
// overlap and that split UTF-8 sequences, special tokens with unused ids between them). The
// input is read twice:
//  - as text: Encode and EncodeWithSpecialTokens give only ids of the vocabulary (Encode never a
//    special one), Encode reads ill-formed UTF-8 as U+FFFD (tokenizer.h), so decoding gives back
//    the input with each maximal ill-formed subsequence replaced, judged by a WHATWG decoder of
//    our own; and the scan and heap merges (internal/byte_pair.h) agree on the raw bytes;
//  - as ids: Decode gives their bytes concatenated, or INVALID_ARGUMENT naming the first id the
//    vocabulary lacks (out of range, or an unused id below vocab_size).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/bpe_tokenizer.h"
#include "datamixer/tokenizer/internal/byte_pair.h"
#include "datamixer/tokenizer/presets.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "fuzz/check.h"

namespace {

namespace tok = prolong::tokenizer;

// Ranks 256, 257, ... in this order.
const std::vector<std::string> kMerges = {
    "he", "ll", "hell", "hello", " w", "or", " wor", " world", "  ", "    ", "\n\n", "aa", "aaaa",
    "in", "ing", " th", " the", "12", "123", "'s", "<|", "|>",
    // Pieces of multi-byte characters as well as whole ones, as real byte-level vocabularies
    // have: é, caf+é, the first two bytes of 中, 中, the first half of an emoji, U+FFFD.
    "\xC3\xA9", "caf\xC3\xA9", "\xE4\xB8", "\xE4\xB8\xAD", "\xF0\x9F", "\xEF\xBF\xBD"};

// Ids 1002 and 256 + kMerges.size() .. 999 are unused: Decode must refuse them too.
const std::map<std::string, uint32_t> kSpecialTokens = {
    {"<|endoftext|>", 1000}, {"<|end|>", 1001}, {"<|begin|>", 1003}};
constexpr uint32_t kVocabSize = 1004;

struct Vocabulary {
  std::unique_ptr<tok::BpeTokenizer> tokenizer;
  tok::internal::RankMap ranks;
  std::map<uint32_t, std::string> bytes_of_id;  // Every id the vocabulary has.
};

const Vocabulary& TheVocabulary() {
  static const Vocabulary* const vocabulary = [] {
    auto* made = new Vocabulary;
    tok::BpeSpec spec;
    spec.ranks = tok::ByteRankFile(kMerges);
    spec.pattern = tok::kCl100kPattern;
    spec.special_tokens = kSpecialTokens;
    spec.bos_token = "<|begin|>";
    spec.eos_token = "<|endoftext|>";
    auto created = tok::BpeTokenizer::Create(spec);
    FUZZ_CHECK(created.ok(), created.status().ToString());
    made->tokenizer = *std::move(created);
    for (int byte = 0; byte < 256; ++byte) {
      made->ranks[std::string(1, static_cast<char>(byte))] = byte;
    }
    for (size_t i = 0; i < kMerges.size(); ++i) made->ranks[kMerges[i]] = 256 + i;
    for (const auto& [bytes, id] : made->ranks) made->bytes_of_id[id] = bytes;
    for (const auto& [token, id] : kSpecialTokens) made->bytes_of_id[id] = token;
    return made;
  }();
  return *vocabulary;
}

// What a WHATWG UTF-8 decoder followed by an encoder makes of `bytes`: the Encoding standard's
// algorithm step by step, independent of utf8.cc, keeping well-formed sequences' bytes.
std::string WhatwgRoundTrip(absl::string_view bytes) {
  std::string out;
  size_t start = 0, needed = 0, seen = 0;
  uint8_t lower = 0x80, upper = 0xBF;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const uint8_t byte = static_cast<uint8_t>(bytes[i]);
    if (needed == 0) {
      start = i;
      lower = 0x80;
      upper = 0xBF;
      if (byte <= 0x7F) {
        out.push_back(static_cast<char>(byte));
      } else if (byte >= 0xC2 && byte <= 0xDF) {
        needed = 1;
      } else if (byte >= 0xE0 && byte <= 0xEF) {
        if (byte == 0xE0) lower = 0xA0;
        if (byte == 0xED) upper = 0x9F;
        needed = 2;
      } else if (byte >= 0xF0 && byte <= 0xF4) {
        if (byte == 0xF0) lower = 0x90;
        if (byte == 0xF4) upper = 0x8F;
        needed = 3;
      } else {
        out += "\xEF\xBF\xBD";
      }
      continue;
    }
    if (byte < lower || byte > upper) {
      // The sequence so far is one error, and this byte starts afresh ("prepend byte").
      needed = seen = 0;
      out += "\xEF\xBF\xBD";
      --i;
      continue;
    }
    lower = 0x80;
    upper = 0xBF;
    if (++seen == needed) {
      out.append(bytes.data() + start, i + 1 - start);
      needed = seen = 0;
    }
  }
  if (needed != 0) out += "\xEF\xBF\xBD";
  return out;
}

void CheckIdsDecodeTo(const Vocabulary& vocabulary, const std::vector<uint32_t>& ids,
                      bool specials_allowed, absl::string_view want, absl::string_view input) {
  for (const uint32_t id : ids) {
    FUZZ_CHECK(vocabulary.bytes_of_id.count(id) == 1, absl::StrCat("id ", id));
    FUZZ_CHECK(specials_allowed || id < 256 + kMerges.size(),
               absl::StrCat("Encode gave special id ", id, " for ", absl::CEscape(input)));
  }
  const absl::StatusOr<std::string> decoded = vocabulary.tokenizer->Decode(ids);
  FUZZ_CHECK(decoded.ok(), decoded.status().ToString());
  FUZZ_CHECK(*decoded == want,
             absl::StrCat(absl::CEscape(input), " decoded as ", absl::CEscape(*decoded), ", want ",
                          absl::CEscape(want)));
}

void CheckText(const Vocabulary& vocabulary, absl::string_view text) {
  const std::string want = WhatwgRoundTrip(text);
  const std::vector<uint32_t> ids = vocabulary.tokenizer->Encode(text);
  FUZZ_CHECK(ids == vocabulary.tokenizer->Encode(want),
             absl::StrCat(absl::CEscape(text), ": ill-formed UTF-8 not read as U+FFFD"));
  CheckIdsDecodeTo(vocabulary, ids, false, want, text);
  CheckIdsDecodeTo(vocabulary, vocabulary.tokenizer->EncodeWithSpecialTokens(text), true, want,
                   text);

  // The two merge orders must agree; the scan is quadratic, so on pieces of bounded length.
  if (text.size() >= 2 && text.size() <= 4096) {
    std::vector<uint32_t> by_scan, by_heap;
    tok::internal::BytePairEncodeByScan(vocabulary.ranks, text, by_scan);
    tok::internal::BytePairEncodeByHeap(vocabulary.ranks, text, by_heap);
    FUZZ_CHECK(by_scan == by_heap, absl::CEscape(text));
    std::string merged;
    for (const uint32_t id : by_scan) merged += vocabulary.bytes_of_id.at(id);
    FUZZ_CHECK(merged == text, absl::CEscape(text));
  }
}

// Two bytes per id: most land near the vocabulary, where its edges and unused ids are, and one
// in sixteen at the top of the uint32 range.
std::vector<uint32_t> IdsOf(absl::string_view bytes) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    const uint32_t value = static_cast<uint8_t>(bytes[i]) |
                           static_cast<uint32_t>(static_cast<uint8_t>(bytes[i + 1])) << 8;
    ids.push_back(value >= 0xF000 ? 0xFFFFFFFFu - (value - 0xF000) : value % (kVocabSize + 64));
  }
  return ids;
}

void CheckIds(const Vocabulary& vocabulary, const std::vector<uint32_t>& ids) {
  std::string want;
  std::optional<size_t> first_unknown;
  for (size_t i = 0; i < ids.size() && !first_unknown; ++i) {
    const auto it = vocabulary.bytes_of_id.find(ids[i]);
    if (it == vocabulary.bytes_of_id.end()) {
      first_unknown = i;
    } else {
      want += it->second;
    }
  }
  const absl::StatusOr<std::string> decoded = vocabulary.tokenizer->Decode(ids);
  if (first_unknown) {
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument &&
                   absl::StrContains(
                       decoded.status().message(),
                       absl::StrCat("ids[", *first_unknown, "] = ", ids[*first_unknown], " ")),
               decoded.ok() ? "decoded" : decoded.status().ToString());
  } else {
    FUZZ_CHECK(decoded.ok() && *decoded == want,
               decoded.ok() ? absl::CEscape(*decoded) : decoded.status().ToString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Vocabulary& vocabulary = TheVocabulary();
  FUZZ_CHECK(vocabulary.tokenizer->vocab_size() == kVocabSize,
             absl::StrCat(vocabulary.tokenizer->vocab_size()));
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckText(vocabulary, bytes);
  CheckIds(vocabulary, IdsOf(bytes));
  return 0;
}
