#include "datamixer/tokenizer/sentencepiece_tokenizer.h"

#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file.h"
#include "common/sha256.h"
#include "datamixer/tokenizer/internal/sentencepiece_shim.h"
#include "datamixer/tokenizer/utf8.h"

namespace prolong::tokenizer {

SentencePieceTokenizer::SentencePieceTokenizer() : model_(internal::NewSentencePieceModel()) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::Load(
    const std::string& model_path) {
  struct stat info;
  if (stat(model_path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat(model_path, ": no such file"));
  }
  std::unique_ptr<SentencePieceTokenizer> tokenizer(new SentencePieceTokenizer());
  if (std::string error = tokenizer->model_->Load(model_path); !error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": not a SentencePiece model: ", error));
  }
  absl::StatusOr<std::string> bytes = ReadFile(model_path);
  if (!bytes.ok()) return bytes.status();
  Sha256 hasher;
  hasher.Update(*bytes);
  tokenizer->fingerprint_ = absl::BytesToHexString(hasher.Finish());
  for (int id = 0; id < tokenizer->model_->PieceCount(); ++id) {
    if (tokenizer->model_->IsControl(id)) {
      tokenizer->control_symbols_.emplace_back(tokenizer->model_->Piece(id), id);
    }
  }
  return tokenizer;
}

void SentencePieceTokenizer::EncodeOrdinary(absl::string_view text,
                                            std::vector<uint32_t>& out) const {
  if (text.empty()) return;
  const std::vector<int> ids = model_->Encode(std::string(text));
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<uint32_t> SentencePieceTokenizer::Encode(absl::string_view text) const {
  std::vector<uint32_t> ids;
  EncodeOrdinary(ReplaceInvalidUtf8(text), ids);
  return ids;
}

std::vector<uint32_t> SentencePieceTokenizer::EncodeWithSpecialTokens(
    absl::string_view input) const {
  const std::string text = ReplaceInvalidUtf8(input);
  std::vector<uint32_t> ids;
  size_t offset = 0;
  while (offset < text.size()) {
    // The earliest control symbol at or after offset (a model has a handful).
    size_t best = std::string::npos;
    const std::pair<std::string, uint32_t>* found = nullptr;
    for (const auto& control : control_symbols_) {
      const size_t at = text.find(control.first, offset);
      if (at < best || (at == best && found && control.first.size() > found->first.size())) {
        best = at;
        found = &control;
      }
    }
    if (found == nullptr) break;
    EncodeOrdinary(absl::string_view(text).substr(offset, best - offset), ids);
    ids.push_back(found->second);
    offset = best + found->first.size();
  }
  EncodeOrdinary(absl::string_view(text).substr(offset), ids);
  return ids;
}

absl::StatusOr<std::string> SentencePieceTokenizer::Decode(absl::Span<const uint32_t> ids) const {
  std::vector<int> pieces;
  pieces.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= vocab_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ids[", i, "] = ", ids[i], " is not in the vocabulary"));
    }
    pieces.push_back(static_cast<int>(ids[i]));
  }
  std::string text;
  if (std::string error = model_->Decode(pieces, &text); !error.empty()) {
    return absl::InvalidArgumentError(error);
  }
  return text;
}

uint32_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<uint32_t>(model_->PieceCount());
}

std::optional<uint32_t> SentencePieceTokenizer::SpecialTokenId(absl::string_view token) const {
  for (const auto& [piece, id] : control_symbols_) {
    if (piece == token) return id;
  }
  return std::nullopt;
}

std::optional<uint32_t> SentencePieceTokenizer::bos_id() const {
  const int id = model_->BosId();
  return id < 0 ? std::nullopt : std::optional<uint32_t>(id);
}

std::optional<uint32_t> SentencePieceTokenizer::eos_id() const {
  const int id = model_->EosId();
  return id < 0 ? std::nullopt : std::optional<uint32_t>(id);
}

absl::Status TrainSentencePiece(const SentencePieceTraining& training) {
  if (training.inputs.empty()) return absl::InvalidArgumentError("inputs: none given");
  if (training.vocab_size < 16) {
    return absl::InvalidArgumentError("vocab_size: must be at least 16");
  }
  if (training.model_type != "bpe" && training.model_type != "unigram") {
    return absl::InvalidArgumentError("model_type: must be bpe or unigram");
  }
  if (training.model_prefix.empty()) return absl::InvalidArgumentError("out: empty prefix");
  // The trainer takes one flag string: paths holding its separators cannot be passed.
  for (const std::string& path : training.inputs) {
    if (path.find_first_of(", ") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("inputs: '", path, "' has a comma or space"));
    }
  }
  if (training.model_prefix.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError("out: the prefix has a space");
  }
  for (const std::string& token : training.special_tokens) {
    if (token.empty() || token.find_first_of(", ") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("special tokens: '", token, "' is empty or has a comma or space"));
    }
  }
  std::string args = absl::StrCat(
      "--input=", absl::StrJoin(training.inputs, ","), " --model_prefix=", training.model_prefix,
      " --vocab_size=", training.vocab_size, " --model_type=", training.model_type,
      " --byte_fallback=true --character_coverage=1.0 --minloglevel=1",
      " --input_sentence_size=2000000 --shuffle_input_sentence=true");
  if (!training.special_tokens.empty()) {
    absl::StrAppend(&args, " --control_symbols=", absl::StrJoin(training.special_tokens, ","));
  }
  if (std::string error = internal::TrainSentencePieceModel(args); !error.empty()) {
    return absl::InvalidArgumentError(error);
  }
  return absl::OkStatus();
}

}  // namespace prolong::tokenizer
