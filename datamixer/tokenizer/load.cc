#include "datamixer/tokenizer/load.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "datamixer/tokenizer/bpe_tokenizer.h"
#include "datamixer/tokenizer/presets.h"
#include "datamixer/tokenizer/sentencepiece_tokenizer.h"
#include "yaml-cpp/yaml.h"

namespace prolong::tokenizer {
namespace {

std::string RelativeTo(const std::string& base_file, const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const size_t slash = base_file.rfind('/');
  return slash == std::string::npos ? path : base_file.substr(0, slash + 1) + path;
}

// The rank lines, as BpeTokenizer::Create reads them: blank ones (CRLF ones too) are skipped.
size_t CountRanks(absl::string_view ranks) {
  size_t count = 0;
  for (absl::string_view line : absl::StrSplit(ranks, '\n')) {
    absl::ConsumeSuffix(&line, "\r");
    count += !line.empty();
  }
  return count;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadRanks(const std::string& ranks_path, Preset preset,
                                                     BpeSpec spec) {
  ASSIGN_OR_RETURN(spec.ranks, ReadFile(ranks_path));
  ApplyPreset(preset, CountRanks(spec.ranks), spec);
  if (spec.pattern.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        ranks_path, ": a bare rank file needs a preset (llama3 or cl100k_base) or a pattern"));
  }
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tokenizer = BpeTokenizer::Create(spec);
  if (!tokenizer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(ranks_path, ": ", tokenizer.status().message()));
  }
  return std::unique_ptr<Tokenizer>(*std::move(tokenizer));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadDescription(const std::string& path, Preset preset) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
  auto field = [&](const char* name) -> absl::StatusOr<std::string> {
    const YAML::Node node = root[name];
    if (!node) return std::string();
    if (!node.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", name, ": must be a string"));
    }
    return node.as<std::string>();
  };
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path, ": not a mapping"));
  ASSIGN_OR_RETURN(std::string type, field("type"));
  if (type == "sentencepiece") {
    ASSIGN_OR_RETURN(std::string model, field("model"));
    if (model.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": model: missing"));
    ASSIGN_OR_RETURN(auto tokenizer, SentencePieceTokenizer::Load(RelativeTo(path, model)));
    return std::unique_ptr<Tokenizer>(std::move(tokenizer));
  }
  if (type != "tiktoken") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": type: want tiktoken or sentencepiece, got '", type, "'"));
  }
  ASSIGN_OR_RETURN(std::string ranks, field("ranks"));
  if (ranks.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": ranks: missing"));
  ASSIGN_OR_RETURN(std::string preset_name, field("preset"));
  if (!preset_name.empty()) {
    absl::StatusOr<Preset> named = ParsePreset(preset_name);
    if (!named.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", named.status().message()));
    }
    preset = *named;
  }
  BpeSpec spec;
  ASSIGN_OR_RETURN(spec.pattern, field("pattern"));
  ASSIGN_OR_RETURN(spec.bos_token, field("bos_token"));
  ASSIGN_OR_RETURN(spec.eos_token, field("eos_token"));
  if (const YAML::Node specials = root["special_tokens"]) {
    if (!specials.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": special_tokens: must map token to id"));
    }
    for (const auto& entry : specials) {
      // Checked first: a key that is a list, a map or null cannot be named in the error either.
      if (!entry.first.IsScalar()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": special_tokens: every token must be a string"));
      }
      const std::string token = entry.first.as<std::string>();
      try {
        spec.special_tokens[token] = entry.second.as<uint32_t>();
      } catch (const YAML::Exception&) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": special_tokens: '", token, "' needs an integer id"));
      }
    }
  }
  return LoadRanks(RelativeTo(path, ranks), preset, std::move(spec));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& path,
                                                         const std::string& preset_name) {
  ASSIGN_OR_RETURN(Preset preset, ParsePreset(preset_name));
  if (absl::EndsWith(path, ".json") || absl::EndsWith(path, ".yaml") ||
      absl::EndsWith(path, ".yml")) {
    return LoadDescription(path, preset);
  }
  // Llama 3 ships its rank file as tokenizer.model: with a preset, a .model file is ranks.
  if (preset == Preset::kNone && absl::EndsWith(path, ".model")) {
    absl::StatusOr<std::unique_ptr<SentencePieceTokenizer>> sentencepiece =
        SentencePieceTokenizer::Load(path);
    if (!sentencepiece.ok()) return sentencepiece.status();
    return std::unique_ptr<Tokenizer>(*std::move(sentencepiece));
  }
  return LoadRanks(path, preset, BpeSpec());
}

}  // namespace prolong::tokenizer
