// Byte-level BPE in tiktoken's format: a rank file of "base64(token bytes) rank" lines, a
// pre-tokenization pattern (PCRE2 with JIT, Unicode properties) and special tokens. Produces
// the same ids as OpenAI's tiktoken for the same encoding (tested against it).
#ifndef PROLONG_DATAMIXER_TOKENIZER_BPE_TOKENIZER_H_
#define PROLONG_DATAMIXER_TOKENIZER_BPE_TOKENIZER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::tokenizer {

struct BpeSpec {
  // Contents of a tiktoken rank file.
  std::string ranks;
  // Pre-tokenization regular expression (tiktoken's pat_str).
  std::string pattern;
  // Special token string -> id; ids must not collide with ranks.
  std::map<std::string, uint32_t> special_tokens;
  std::string bos_token;  // Empty: none. Must name a special token.
  std::string eos_token;
};

class BpeTokenizer : public Tokenizer {
 public:
  // Every id (rank or special token) is below this: far above any real vocabulary (the largest
  // have about 256K ids), and low enough that the id -> bytes table, whose size is the largest
  // id's, stays small however sparse the ids are.
  static constexpr uint32_t kMaxVocabSize = 1 << 21;

  // INVALID_ARGUMENT for a malformed rank line (with its line number), a pattern PCRE2 rejects
  // (with the offset), a missing single-byte token, special tokens that collide, or an id of
  // kMaxVocabSize or more.
  static absl::StatusOr<std::unique_ptr<BpeTokenizer>> Create(const BpeSpec& spec);
  ~BpeTokenizer() override;

  std::vector<uint32_t> Encode(absl::string_view text) const override;
  std::vector<uint32_t> EncodeWithSpecialTokens(absl::string_view text) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const uint32_t> ids) const override;
  uint32_t vocab_size() const override { return static_cast<uint32_t>(decoder_.size()); }
  std::optional<uint32_t> SpecialTokenId(absl::string_view token) const override;
  std::optional<uint32_t> bos_id() const override { return bos_id_; }
  std::optional<uint32_t> eos_id() const override { return eos_id_; }
  const std::string& fingerprint() const override { return fingerprint_; }

  // Number of ranked (non-special) tokens.
  size_t num_ranks() const { return ranks_.size(); }

 private:
  BpeTokenizer() = default;
  // Appends the ids of valid UTF-8 `text` with no special tokens recognized.
  void EncodeOrdinary(absl::string_view text, std::vector<uint32_t>& out) const;

  absl::flat_hash_map<std::string, uint32_t> ranks_;  // token bytes -> rank (internal::RankMap)
  absl::flat_hash_map<std::string, uint32_t> special_tokens_;
  std::vector<std::string> decoder_;  // Id -> bytes; empty for unused ids.
  std::optional<uint32_t> bos_id_, eos_id_;
  std::string fingerprint_;
  struct Pattern;
  std::unique_ptr<Pattern> pattern_;
};

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_BPE_TOKENIZER_H_
