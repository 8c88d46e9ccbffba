// The shim shared object: the only code that includes sentencepiece's headers or links it.
// See sentencepiece_shim.h for why.
#include "datamixer/tokenizer/internal/sentencepiece_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <exception>

namespace prolong::tokenizer::internal {
namespace {

class Model : public SentencePieceModel {
 public:
  std::string Load(const std::string& path) override {
    // Some malformed models make the library throw rather than return a status (its trie
    // builder throws on a piece that is a NUL byte): uncaught, that would end the process.
    try {
      const auto status = processor_.Load(path);
      return status.ok() ? "" : status.ToString();
    } catch (const std::exception& e) {
      return std::string("malformed model: ") + e.what();
    }
  }

  std::vector<int> Encode(const std::string& text) const override {
    std::vector<int> ids;
    // Encoding valid UTF-8 with a loaded model cannot fail.
    processor_.Encode(text, &ids).IgnoreError();
    return ids;
  }

  std::string Decode(const std::vector<int>& ids, std::string* text) const override {
    const auto status = processor_.Decode(ids, text);
    return status.ok() ? "" : status.ToString();
  }

  int PieceCount() const override { return processor_.GetPieceSize(); }
  bool IsControl(int id) const override { return processor_.IsControl(id); }
  std::string Piece(int id) const override { return processor_.IdToPiece(id); }
  int BosId() const override { return processor_.bos_id(); }
  int EosId() const override { return processor_.eos_id(); }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace
}  // namespace prolong::tokenizer::internal

extern "C" {

__attribute__((visibility("default"))) prolong::tokenizer::internal::SentencePieceModel*
ProlongNewSentencePieceModel() {
  return new prolong::tokenizer::internal::Model();
}

__attribute__((visibility("default"))) void ProlongTrainSentencePiece(const std::string& flags,
                                                                      std::string* error) {
  const auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  *error = status.ok() ? "" : status.ToString();
}

}  // extern "C"
