#include "evaluator/metrics/answer.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "evaluator/metrics/internal/python_text.h"

namespace prolong::evaluator::metrics {
namespace {

using internal::DecodeUtf8;
using internal::EncodeUtf8;

bool IsArticle(std::u32string_view word) { return word == U"a" || word == U"an" || word == U"the"; }

// Whether `pattern` matches `text` at `pos` as a literal under Python's re.IGNORECASE.
bool MatchesIgnoreCase(std::u32string_view text, size_t pos, std::u32string_view pattern) {
  if (pos + pattern.size() > text.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (!internal::IgnoreCaseEquals(text[pos + i], pattern[i])) return false;
  }
  return true;
}

bool IsNoAnswerToken(absl::string_view normalized) {
  return normalized == "yes" || normalized == "no" || normalized == "noanswer";
}

}  // namespace

std::string NormalizeAnswer(absl::string_view text) {
  const std::u32string lowered = internal::PythonLower(DecodeUtf8(text));
  std::u32string unpunctuated;
  unpunctuated.reserve(lowered.size());
  for (char32_t c : lowered) {
    if (!internal::IsAsciiPunctuation(c)) unpunctuated.push_back(c);
  }
  // re.sub(r'\b(a|an|the)\b', ' ', text) on str replaces exactly the maximal runs of word
  // characters that are an article.
  std::u32string without_articles;
  without_articles.reserve(unpunctuated.size());
  size_t i = 0;
  while (i < unpunctuated.size()) {
    if (!internal::IsPythonWord(unpunctuated[i])) {
      without_articles.push_back(unpunctuated[i++]);
      continue;
    }
    const size_t begin = i;
    while (i < unpunctuated.size() && internal::IsPythonWord(unpunctuated[i])) ++i;
    const std::u32string_view word = std::u32string_view(unpunctuated).substr(begin, i - begin);
    if (IsArticle(word)) {
      without_articles.push_back(' ');
    } else {
      without_articles.append(word);
    }
  }
  std::string out;
  for (std::u32string_view word : internal::PythonSplit(without_articles)) {
    if (!out.empty()) out.push_back(' ');
    out += EncodeUtf8(word);
  }
  return out;
}

bool ExactMatch(absl::string_view prediction, absl::string_view gold) {
  return NormalizeAnswer(prediction) == NormalizeAnswer(gold);
}

bool SubstringExactMatch(absl::string_view prediction, absl::string_view gold) {
  // A byte substring of valid UTF-8 is a code-point substring, as Python's `in` tests.
  return NormalizeAnswer(prediction).find(NormalizeAnswer(gold)) != std::string::npos;
}

double TokenF1(absl::string_view prediction, absl::string_view gold) {
  const std::string normalized_prediction = NormalizeAnswer(prediction);
  const std::string normalized_gold = NormalizeAnswer(gold);
  if (normalized_prediction != normalized_gold &&
      (IsNoAnswerToken(normalized_prediction) || IsNoAnswerToken(normalized_gold))) {
    return 0;
  }
  // Normalized text holds single spaces only.
  std::map<absl::string_view, int> gold_counts;
  size_t gold_tokens = 0;
  for (absl::string_view token : absl::StrSplit(normalized_gold, ' ', absl::SkipEmpty())) {
    ++gold_counts[token];
    ++gold_tokens;
  }
  size_t prediction_tokens = 0;
  size_t same = 0;
  for (absl::string_view token : absl::StrSplit(normalized_prediction, ' ', absl::SkipEmpty())) {
    ++prediction_tokens;
    auto it = gold_counts.find(token);
    if (it != gold_counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0;
  // The operations in HELMET's order, for the same last bit.
  const double precision = 1.0 * same / prediction_tokens;
  const double recall = 1.0 * same / gold_tokens;
  return (2 * precision * recall) / (precision + recall);
}

std::string ParseOutput(absl::string_view output, absl::string_view prefix) {
  const std::u32string text = DecodeUtf8(output);
  const std::u32string pattern = DecodeUtf8(prefix);
  size_t start = 0;
  for (size_t pos = 0; pos + pattern.size() <= text.size(); ++pos) {
    if (MatchesIgnoreCase(text, pos, pattern)) {
      start = pos + pattern.size();
      break;
    }
  }
  // Python's "." stops at "\n" only, so the line ends there (a "\r" stays and is stripped).
  size_t end = text.find(U'\n', start);
  if (end == std::u32string::npos) end = text.size();
  std::u32string_view line =
      internal::PythonStrip(std::u32string_view(text).substr(start, end - start));
  // Chat models sometimes repeat the prefix: HELMET removes it once more.
  if (MatchesIgnoreCase(line, 0, pattern)) line.remove_prefix(pattern.size());
  return EncodeUtf8(internal::PythonStrip(line));
}

absl::StatusOr<std::vector<std::string>> FlattenGolds(const nlohmann::ordered_json& answer) {
  if (answer.is_string()) return std::vector<std::string>{answer.get<std::string>()};
  if (!answer.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "answer: expected a string, a list or a list of lists, got ", answer.type_name()));
  }
  if (answer.empty()) return absl::InvalidArgumentError("answer: the list of answers is empty");
  std::vector<std::string> golds;
  const bool nested = answer.front().is_array();
  for (size_t i = 0; i < answer.size(); ++i) {
    const nlohmann::ordered_json& item = answer[i];
    if (!nested) {
      if (!item.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("answer[", i, "]: expected a string, got ", item.type_name()));
      }
      golds.push_back(item.get<std::string>());
      continue;
    }
    if (!item.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("answer[", i, "]: expected a list like answer[0], got ", item.type_name()));
    }
    for (size_t j = 0; j < item.size(); ++j) {
      if (!item[j].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("answer[", i, "][", j, "]: expected a string, got ", item[j].type_name()));
      }
      golds.push_back(item[j].get<std::string>());
    }
  }
  if (golds.empty()) return absl::InvalidArgumentError("answer: the lists of answers are empty");
  return golds;
}

}  // namespace prolong::evaluator::metrics
