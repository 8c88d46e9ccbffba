#include "evaluator/tasks/internal/reference_length.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace prolong::evaluator::tasks::internal {
namespace {

// Tokens near a cut that may differ from the whole text's (a punctuation run and the newlines
// after it are one piece, a digit run splits in threes, ...): far fewer than this.
constexpr int64_t kMargin = 64;

struct Leading {
  std::vector<uint32_t> ids;
  bool complete = false;  // The whole text; otherwise at least the `want` asked for, exact.
};

// The first tokens of `text` (special tokens recognized, as a Hugging Face tokenizer does).
Leading EncodeLeading(const tokenizer::Tokenizer& tokenizer, absl::string_view text, int64_t want) {
  size_t bytes = static_cast<size_t>(std::max<int64_t>(want + kMargin, 1)) * 8;
  while (true) {
    const size_t cut =
        bytes >= text.size() ? absl::string_view::npos : text.find_first_of(" \t\n\r", bytes);
    if (cut == absl::string_view::npos) {
      return Leading{tokenizer.EncodeWithSpecialTokens(text), true};
    }
    std::vector<uint32_t> ids = tokenizer.EncodeWithSpecialTokens(text.substr(0, cut));
    if (static_cast<int64_t>(ids.size()) >= want + kMargin) {
      ids.resize(ids.size() - kMargin);
      return Leading{std::move(ids), false};
    }
    bytes *= 2;
  }
}

int64_t BosCount(const tokenizer::Tokenizer& tokenizer) {
  return tokenizer.bos_id().has_value() ? 1 : 0;
}

// The length of the UTF-8 sequence a lead byte announces (1 for ASCII and stray bytes).
size_t SequenceLength(unsigned char lead) {
  if (lead >= 0xf0 && lead < 0xf8) return 4;
  if (lead >= 0xe0) return lead < 0xf0 ? 3 : 1;
  if (lead >= 0xc0) return 2;
  return 1;
}

}  // namespace

bool HasAtLeastTokens(const tokenizer::Tokenizer& tokenizer, absl::string_view text,
                      int64_t min_tokens) {
  const int64_t need = min_tokens - BosCount(tokenizer);
  if (need <= 0) return true;
  // Every ordinary token covers at least one byte (SentencePiece adds one leading space).
  if (text.find("<|") == absl::string_view::npos && static_cast<int64_t>(text.size()) + 1 < need) {
    return false;
  }
  const Leading leading = EncodeLeading(tokenizer, text, need);
  return static_cast<int64_t>(leading.ids.size()) >= need;
}

absl::StatusOr<std::string> TruncateToTokens(const tokenizer::Tokenizer& tokenizer,
                                             absl::string_view text, int64_t max_tokens) {
  const int64_t bos = BosCount(tokenizer);
  const Leading leading = EncodeLeading(tokenizer, text, max_tokens + 1 - bos);
  if (leading.complete && static_cast<int64_t>(leading.ids.size()) + bos <= max_tokens) {
    return std::string(text);
  }
  // HELMET keeps the text up to the end of token number max_tokens - len(postfix tokens),
  // counting BOS as token 0 when there is one.
  const int64_t postfix_tokens =
      static_cast<int64_t>(tokenizer.EncodeWithSpecialTokens(kOmittedPostfix).size()) + bos;
  const int64_t keep = max_tokens - postfix_tokens + 1 - bos;
  if (keep <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot cut a document to ", max_tokens,
                                                   " tokens: the postfix alone takes ",
                                                   postfix_tokens));
  }
  absl::StatusOr<std::string> prefix = DecodePrefix(
      tokenizer, absl::MakeConstSpan(leading.ids).subspan(0, static_cast<size_t>(keep)));
  if (!prefix.ok()) return prefix.status();
  return absl::StrCat(*prefix, kOmittedPostfix);
}

absl::StatusOr<std::string> DecodePrefix(const tokenizer::Tokenizer& tokenizer,
                                         absl::Span<const uint32_t> ids) {
  absl::StatusOr<std::string> text = tokenizer.Decode(ids);
  if (!text.ok()) return text.status();
  // Find the last lead byte; drop its sequence if the bytes after it are too few.
  size_t lead = text->size();
  for (size_t back = 1; back <= 4 && back <= text->size(); ++back) {
    const unsigned char c = static_cast<unsigned char>((*text)[text->size() - back]);
    if ((c & 0xc0) != 0x80) {
      lead = text->size() - back;
      break;
    }
  }
  if (lead < text->size() &&
      SequenceLength(static_cast<unsigned char>((*text)[lead])) > text->size() - lead) {
    text->resize(lead);
  }
  return text;
}

absl::StatusOr<std::string> DecodeSuffix(const tokenizer::Tokenizer& tokenizer,
                                         absl::Span<const uint32_t> ids) {
  absl::StatusOr<std::string> text = tokenizer.Decode(ids);
  if (!text.ok()) return text.status();
  size_t start = 0;
  while (start < text->size() && start < 3 &&
         (static_cast<unsigned char>((*text)[start]) & 0xc0) == 0x80) {
    ++start;
  }
  return text->substr(start);
}

}  // namespace prolong::evaluator::tasks::internal
