#include "datamixer/tokenizer/presets.h"

#include "absl/strings/str_cat.h"

namespace prolong::tokenizer {

const char kCl100kPattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

absl::StatusOr<Preset> ParsePreset(absl::string_view name) {
  if (name.empty()) return Preset::kNone;
  if (name == "llama3") return Preset::kLlama3;
  if (name == "cl100k_base") return Preset::kCl100kBase;
  return absl::InvalidArgumentError(
      absl::StrCat("preset: unknown '", name, "' (known: llama3, cl100k_base)"));
}

namespace {

// Llama 3.1's special tokens, in id order after the ranks (Meta's llama-models tokenizer.py).
std::map<std::string, uint32_t> Llama3SpecialTokens(size_t num_ranks) {
  std::vector<std::string> names = {"<|begin_of_text|>",
                                    "<|end_of_text|>",
                                    "<|reserved_special_token_0|>",
                                    "<|reserved_special_token_1|>",
                                    "<|finetune_right_pad_id|>",
                                    "<|reserved_special_token_2|>",
                                    "<|start_header_id|>",
                                    "<|end_header_id|>",
                                    "<|eom_id|>",
                                    "<|eot_id|>",
                                    "<|python_tag|>"};
  for (int i = 3; names.size() < 256; ++i) {
    names.push_back(absl::StrCat("<|reserved_special_token_", i, "|>"));
  }
  std::map<std::string, uint32_t> tokens;
  for (size_t i = 0; i < names.size(); ++i) {
    tokens[names[i]] = static_cast<uint32_t>(num_ranks + i);
  }
  return tokens;
}

}  // namespace

void ApplyPreset(Preset preset, size_t num_ranks, BpeSpec& spec) {
  if (preset == Preset::kNone) return;
  if (spec.pattern.empty()) spec.pattern = kCl100kPattern;
  if (!spec.special_tokens.empty()) return;
  if (preset == Preset::kLlama3) {
    spec.special_tokens = Llama3SpecialTokens(num_ranks);
    spec.bos_token = "<|begin_of_text|>";
    spec.eos_token = "<|end_of_text|>";
  } else {
    spec.special_tokens = {{"<|endoftext|>", 100257},
                           {"<|fim_prefix|>", 100258},
                           {"<|fim_middle|>", 100259},
                           {"<|fim_suffix|>", 100260},
                           {"<|endofprompt|>", 100276}};
    spec.eos_token = "<|endoftext|>";
  }
}

}  // namespace prolong::tokenizer
