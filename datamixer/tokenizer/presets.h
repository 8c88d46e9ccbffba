// What a bare tiktoken rank file does not say: the split pattern, the special tokens and which
// of them begin and end a document, for the encodings prolong knows by name.
#ifndef PROLONG_DATAMIXER_TOKENIZER_PRESETS_H_
#define PROLONG_DATAMIXER_TOKENIZER_PRESETS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/bpe_tokenizer.h"

namespace prolong::tokenizer {

enum class Preset {
  kNone,
  // Llama 3 / 3.1 (tokenizer.model): 256 special tokens numbered after the ranks.
  kLlama3,
  // OpenAI's cl100k_base.
  kCl100kBase,
};

// "llama3", "cl100k_base", or "" for kNone; INVALID_ARGUMENT listing the names otherwise.
absl::StatusOr<Preset> ParsePreset(absl::string_view name);

// The pattern Llama 3 and cl100k_base share (tiktoken's pat_str for cl100k_base).
extern const char kCl100kPattern[];

// Fills what `spec` leaves empty (pattern, special tokens, bos/eos) from `preset`, given the
// number of ranks in the rank file.
void ApplyPreset(Preset preset, size_t num_ranks, BpeSpec& spec);

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_PRESETS_H_
