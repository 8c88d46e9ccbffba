// HELMET's handling of long documents at load time (data.py): filter_length, which keeps the
// documents of at least N tokens, and truncate_llama2, which cuts a document to N tokens and
// appends " ... [the rest of the text is omitted]", both counted in Llama 2's tokenizer (with its
// BOS token) so that every model sees the same text. We count in the reference tokenizer we
// are given.
//
// A 128K-token document is only tokenized as far as the decision needs: BPE and SentencePiece
// pieces do not cross whitespace, so the tokens of a prefix cut at whitespace equal the text's
// own tokens up to the last few, which a margin leaves out.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_REFERENCE_LENGTH_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_REFERENCE_LENGTH_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::evaluator::tasks::internal {

// HELMET's truncate_llama2 postfix.
inline constexpr char kOmittedPostfix[] = " ... [the rest of the text is omitted]";

// Whether len(tokenizer(text)["input_ids"]) >= min_tokens (BOS counted when the tokenizer has
// one).
bool HasAtLeastTokens(const tokenizer::Tokenizer& tokenizer, absl::string_view text,
                      int64_t min_tokens);

// truncate_llama2: `text` unchanged when it has at most `max_tokens` tokens (BOS counted);
// otherwise its first tokens, as many as leave room for the postfix, followed by the postfix.
absl::StatusOr<std::string> TruncateToTokens(const tokenizer::Tokenizer& tokenizer,
                                             absl::string_view text, int64_t max_tokens);

// The decoded ids with a trailing partial UTF-8 character dropped (a cut between tokens can
// fall inside one; HELMET's character offsets cut before it).
absl::StatusOr<std::string> DecodePrefix(const tokenizer::Tokenizer& tokenizer,
                                         absl::Span<const uint32_t> ids);

// Same for a suffix: a leading partial character is dropped.
absl::StatusOr<std::string> DecodeSuffix(const tokenizer::Tokenizer& tokenizer,
                                         absl::Span<const uint32_t> ids);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_REFERENCE_LENGTH_H_
