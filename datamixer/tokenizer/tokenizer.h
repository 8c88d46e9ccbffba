// The tokenizer interface every part of prolong uses: tiktoken-format BPE (Llama-3, OpenAI
// encodings) and SentencePiece models behind one type. Implementations are immutable after
// loading, so one instance serves many threads.
#ifndef PROLONG_DATAMIXER_TOKENIZER_TOKENIZER_H_
#define PROLONG_DATAMIXER_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace prolong::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids of `text`. Special tokens are never produced: their strings inside `text` are encoded as
  // ordinary text. Bytes that are not valid UTF-8 are read as U+FFFD (see utf8.h).
  virtual std::vector<uint32_t> Encode(absl::string_view text) const = 0;

  // Like Encode, but each special token's string in `text` becomes that token's id.
  virtual std::vector<uint32_t> EncodeWithSpecialTokens(absl::string_view text) const = 0;

  // The bytes of `ids` concatenated. INVALID_ARGUMENT naming the first id that is out of range.
  virtual absl::StatusOr<std::string> Decode(absl::Span<const uint32_t> ids) const = 0;

  // One past the largest id.
  virtual uint32_t vocab_size() const = 0;

  // The id of a special token, e.g. "<|eot_id|>".
  virtual std::optional<uint32_t> SpecialTokenId(absl::string_view token) const = 0;

  // Beginning and end of a document, when the tokenizer defines them.
  virtual std::optional<uint32_t> bos_id() const = 0;
  virtual std::optional<uint32_t> eos_id() const = 0;

  // Hex SHA-256 of everything that decides the ids (ranks, pattern, special tokens; or the
  // model file): equal fingerprints encode every text alike.
  virtual const std::string& fingerprint() const = 0;
};

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_TOKENIZER_H_
