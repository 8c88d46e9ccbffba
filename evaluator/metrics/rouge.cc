// Follows google-research/rouge (rouge_scorer.py, tokenize.py, scoring.py): the same token
// rules, the same LCS table and backtracking tie-break (which decides ROUGE-Lsum's unions),
// and the same floating-point operations in the same order.
#include "evaluator/metrics/rouge.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"
#include "evaluator/metrics/internal/python_text.h"
#include "evaluator/metrics/porter_stemmer.h"

namespace prolong::evaluator::metrics {
namespace {

using Tokens = std::vector<int>;

bool IsTokenChar(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Tokens as ids, equal ids for equal strings, shared by both sides of one comparison.
class Vocabulary {
 public:
  Tokens Encode(absl::string_view text) {
    Tokens ids;
    for (const std::string& token : RougeTokenize(text)) {
      ids.push_back(ids_.try_emplace(token, static_cast<int>(ids_.size())).first->second);
    }
    return ids;
  }

 private:
  absl::flat_hash_map<std::string, int> ids_;
};

double FMeasure(double precision, double recall) {
  if (precision + recall > 0) return 2 * precision * recall / (precision + recall);
  return 0.0;
}

int LcsLength(const Tokens& ref, const Tokens& can) {
  std::vector<int> previous(can.size() + 1, 0);
  std::vector<int> current(can.size() + 1, 0);
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= can.size(); ++j) {
      current[j] =
          ref[i - 1] == can[j - 1] ? previous[j - 1] + 1 : std::max(previous[j], current[j - 1]);
    }
    std::swap(previous, current);
  }
  return previous[can.size()];
}

// Indices into `ref` of one longest common subsequence, read back from the full table with
// rouge-score's tie-break (move left only when strictly better).
std::vector<size_t> LcsIndices(const Tokens& ref, const Tokens& can) {
  const size_t rows = ref.size() + 1;
  const size_t cols = can.size() + 1;
  std::vector<int> table(rows * cols, 0);
  auto at = [&](size_t i, size_t j) -> int& { return table[i * cols + j]; };
  for (size_t i = 1; i < rows; ++i) {
    for (size_t j = 1; j < cols; ++j) {
      at(i, j) =
          ref[i - 1] == can[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  std::vector<size_t> indices;
  size_t i = ref.size();
  size_t j = can.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      indices.push_back(i - 1);
      --i;
      --j;
    } else if (at(i, j - 1) > at(i - 1, j)) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(indices.begin(), indices.end());
  return indices;
}

std::vector<Tokens> SentenceTokens(absl::string_view text, Vocabulary& vocabulary) {
  std::vector<Tokens> sentences;
  for (absl::string_view sentence : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    sentences.push_back(vocabulary.Encode(sentence));
  }
  return sentences;
}

}  // namespace

std::vector<std::string> RougeTokenize(absl::string_view text) {
  const std::u32string lowered = internal::PythonLower(internal::DecodeUtf8(text));
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < lowered.size()) {
    if (!IsTokenChar(lowered[i])) {
      ++i;
      continue;
    }
    std::string token;
    while (i < lowered.size() && IsTokenChar(lowered[i])) token.push_back(lowered[i++]);
    tokens.push_back(token.size() > 3 ? PorterStem(token) : token);
  }
  return tokens;
}

RougeScore RougeL(absl::string_view target, absl::string_view prediction) {
  Vocabulary vocabulary;
  const Tokens target_tokens = vocabulary.Encode(target);
  const Tokens prediction_tokens = vocabulary.Encode(prediction);
  if (target_tokens.empty() || prediction_tokens.empty()) return {};
  const double lcs = LcsLength(target_tokens, prediction_tokens);
  RougeScore score;
  score.precision = lcs / prediction_tokens.size();
  score.recall = lcs / target_tokens.size();
  score.fmeasure = FMeasure(score.precision, score.recall);
  return score;
}

RougeScore RougeLsum(absl::string_view target, absl::string_view prediction) {
  Vocabulary vocabulary;
  const std::vector<Tokens> references = SentenceTokens(target, vocabulary);
  const std::vector<Tokens> candidates = SentenceTokens(prediction, vocabulary);
  if (references.empty() || candidates.empty()) return {};
  size_t m = 0;
  size_t n = 0;
  std::map<int, int> reference_counts;
  std::map<int, int> candidate_counts;
  for (const Tokens& sentence : references) {
    m += sentence.size();
    for (int token : sentence) ++reference_counts[token];
  }
  for (const Tokens& sentence : candidates) {
    n += sentence.size();
    for (int token : sentence) ++candidate_counts[token];
  }
  if (m == 0 || n == 0) return {};

  int hits = 0;
  for (const Tokens& reference : references) {
    std::set<size_t> union_indices;
    for (const Tokens& candidate : candidates) {
      for (size_t index : LcsIndices(reference, candidate)) union_indices.insert(index);
    }
    for (size_t index : union_indices) {
      const int token = reference[index];
      if (candidate_counts[token] > 0 && reference_counts[token] > 0) {
        ++hits;
        --candidate_counts[token];
        --reference_counts[token];
      }
    }
  }
  RougeScore score;
  score.recall = static_cast<double>(hits) / m;
  score.precision = static_cast<double>(hits) / n;
  score.fmeasure = FMeasure(score.precision, score.recall);
  return score;
}

}  // namespace prolong::evaluator::metrics
