#include "evaluator/tasks/internal/test_tokenizer.h"

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "datamixer/tokenizer/bpe_tokenizer.h"
#include "datamixer/tokenizer/presets.h"
#include "datamixer/tokenizer/test_ranks.h"

namespace prolong::evaluator::tasks::internal {
namespace {

const std::vector<std::string>& Merges() {
  static const auto* merges = new std::vector<std::string>{
      "th", "he", "the", " t", " the", "in", "an",   "er", "on",  " a", "re", "at", "en",
      "es", " s", "or",  " o", " w",   "nd", " and", "is", " is", "ed", "ou", " c", "ing"};
  return *merges;
}

std::unique_ptr<tokenizer::Tokenizer> Build(tokenizer::Preset preset) {
  tokenizer::BpeSpec spec;
  spec.ranks = tokenizer::ByteRankFile(Merges());
  tokenizer::ApplyPreset(preset, 256 + Merges().size(), spec);
  if (preset == tokenizer::Preset::kCl100kBase) {
    spec.special_tokens.clear();
    spec.eos_token.clear();
  }
  auto built = tokenizer::BpeTokenizer::Create(spec);
  if (!built.ok()) {
    std::cerr << "test tokenizer: " << built.status() << "\n";
    std::abort();
  }
  return *std::move(built);
}

}  // namespace

std::unique_ptr<tokenizer::Tokenizer> Llama3TestTokenizer() {
  return Build(tokenizer::Preset::kLlama3);
}

std::unique_ptr<tokenizer::Tokenizer> PlainTestTokenizer() {
  return Build(tokenizer::Preset::kCl100kBase);
}

}  // namespace prolong::evaluator::tasks::internal
