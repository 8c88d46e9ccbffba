// libsentencepiece, kept in a library of its own.
//
// Debian's libsentencepiece carries a private copy of protobuf 3.14 and exports its symbols,
// which collide with the system protobuf 3.21 that gRPC brings into every prolong process (the
// first loaded wins, and one side aborts in VerifyVersion). Its header also declares
// absl::string_view as std::string_view, which Debian's Abseil defines as a class of its own.
// So libsentencepiece is only ever linked into a small shim shared object, which is embedded
// in the binary and loaded with RTLD_LOCAL | RTLD_DEEPBIND: the shim and libsentencepiece then
// resolve protobuf to their own copy and nothing leaks into the process's global scope. The
// interface uses std types and virtual calls only, so no symbol crosses the boundary.
#ifndef PROLONG_DATAMIXER_TOKENIZER_INTERNAL_SENTENCEPIECE_SHIM_H_
#define PROLONG_DATAMIXER_TOKENIZER_INTERNAL_SENTENCEPIECE_SHIM_H_

#include <memory>
#include <string>
#include <vector>

namespace prolong::tokenizer::internal {

class SentencePieceModel {
 public:
  virtual ~SentencePieceModel() = default;

  // Returns "" on success, else the library's message.
  virtual std::string Load(const std::string& path) = 0;

  virtual std::vector<int> Encode(const std::string& text) const = 0;
  // Returns "" on success, else the library's message.
  virtual std::string Decode(const std::vector<int>& ids, std::string* text) const = 0;

  virtual int PieceCount() const = 0;
  virtual bool IsControl(int id) const = 0;
  virtual std::string Piece(int id) const = 0;
  virtual int BosId() const = 0;  // -1 if the model has none.
  virtual int EosId() const = 0;
};

// The shim's entry points, looked up by name in it.
using NewSentencePieceModelFn = SentencePieceModel* (*)();
using TrainSentencePieceFn = void (*)(const std::string& flags, std::string* error);
inline constexpr char kNewSentencePieceModelSymbol[] = "ProlongNewSentencePieceModel";
inline constexpr char kTrainSentencePieceSymbol[] = "ProlongTrainSentencePiece";

// A model object from the shim (loading the shim on first use). Aborts if the embedded shim
// cannot be loaded, which would be a broken build.
std::unique_ptr<SentencePieceModel> NewSentencePieceModel();

// Runs the trainer with command-line style flags. Returns "" on success, else the message.
std::string TrainSentencePieceModel(const std::string& flags);

}  // namespace prolong::tokenizer::internal

#endif  // PROLONG_DATAMIXER_TOKENIZER_INTERNAL_SENTENCEPIECE_SHIM_H_
