// Loading a tokenizer named by a file:
//  - a description file (.json, .yaml, .yml):
//      {"type": "tiktoken", "ranks": "cl100k_base.tiktoken", "preset": "cl100k_base",
//       "pattern": "...", "special_tokens": {"<|endoftext|>": 100257},
//       "bos_token": "...", "eos_token": "..."}
//    or {"type": "sentencepiece", "model": "spm.model"}; relative paths are relative to the
//    description file, and explicit fields override the preset's;
//  - a SentencePiece model (.model);
//  - a bare tiktoken rank file (Llama 3's tokenizer.model too), with a preset.
#ifndef PROLONG_DATAMIXER_TOKENIZER_LOAD_H_
#define PROLONG_DATAMIXER_TOKENIZER_LOAD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::tokenizer {

// `preset` is "", "llama3" or "cl100k_base". NOT_FOUND names a missing file; INVALID_ARGUMENT
// names the field or line that is wrong.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         const std::string& preset = "");

}  // namespace prolong::tokenizer

#endif  // PROLONG_DATAMIXER_TOKENIZER_LOAD_H_
