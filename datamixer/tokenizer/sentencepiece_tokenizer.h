// SentencePiece models (libsentencepiece) behind the Tokenizer interface, and training of the
// small models prolong uses for CPU-sized experiments.
#ifndef PROLONG_DATAMIXER_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
#define PROLONG_DATAMIXER_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::tokenizer {
namespace internal {
class SentencePieceModel;
}  // namespace internal

class SentencePieceTokenizer : public Tokenizer {
 public:
  // NOT_FOUND if `model_path` does not exist, INVALID_ARGUMENT if it is not a model.
  static absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> Load(
      const std::string& model_path);
  ~SentencePieceTokenizer() override;

  std::vector<uint32_t> Encode(absl::string_view text) const override;
  // Control symbols (<s>, </s>) written in the text become their ids.
  std::vector<uint32_t> EncodeWithSpecialTokens(absl::string_view text) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const uint32_t> ids) const override;
  uint32_t vocab_size() const override;
  std::optional<uint32_t> SpecialTokenId(absl::string_view token) const override;
  std::optional<uint32_t> bos_id() const override;
  std::optional<uint32_t> eos_id() const override;
  const std::string& fingerprint() const override { return fingerprint_; }

 private:
  SentencePieceTokenizer();
  void EncodeOrdinary(absl::string_view text, std::vector<uint32_t>& out) const;

  std::unique_ptr<internal::SentencePieceModel> model_;
  std::vector<std::pair<std::string, uint32_t>> control_symbols_;  // e.g. ("<s>", 1)
  std::string fingerprint_;
};

struct SentencePieceTraining {
  std::vector<std::string> inputs;  // Text files, one sentence or paragraph per line.
  int vocab_size = 8000;
  std::string model_prefix;        // Writes PREFIX.model and PREFIX.vocab.
  std::string model_type = "bpe";  // bpe or unigram.
  // Control symbols besides <s> and </s>, e.g. Llama 3's chat tokens (chat_template.h): never
  // produced from plain text, written as themselves in EncodeWithSpecialTokens' input.
  std::vector<std::string> special_tokens;
};

// Trains a model with byte fallback (no input is ever unknown) and full character coverage.
absl::Status TrainSentencePiece(const SentencePieceTraining& training);

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_SENTENCEPIECE_TOKENIZER_H_
