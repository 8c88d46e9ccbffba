#include "evaluator/tasks/internal/sentences.h"

#include <cctype>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"

namespace prolong::evaluator::tasks::internal {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool IsClosing(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Abbreviations that end with a period without ending a sentence (lowercase, no period).
bool IsAbbreviation(absl::string_view word) {
  static const auto* kAbbreviations = new absl::flat_hash_set<std::string>{
      "mr",   "mrs", "ms",   "dr",  "prof", "sr",   "jr",  "st",  "vs",  "etc",
      "e.g",  "i.e", "inc",  "ltd", "co",   "corp", "no",  "fig", "vol", "approx",
      "dept", "est", "gen",  "gov", "jan",  "feb",  "mar", "apr", "jun", "jul",
      "aug",  "sep", "sept", "oct", "nov",  "dec",  "mt",  "u.s"};
  return kAbbreviations->contains(absl::AsciiStrToLower(word));
}

// Whether the word that follows can open a sentence.
bool CanStartSentence(absl::string_view text, size_t at) {
  const unsigned char c = static_cast<unsigned char>(text[at]);
  if (std::isupper(c) || std::isdigit(c)) return true;
  if (c == '"' || c == '\'' || c == '(' || c == '[') return true;
  return c >= 0x80;  // Non-ASCII letters and curly quotes: Punkt would mostly split here too.
}

}  // namespace

std::vector<absl::string_view> SplitSentences(absl::string_view text) {
  std::vector<absl::string_view> sentences;
  size_t start = 0;
  while (start < text.size() && IsSpace(text[start])) ++start;
  size_t i = start;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '.' && c != '!' && c != '?') {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < text.size() &&
           (IsClosing(text[end]) || text[end] == '.' || text[end] == '!' || text[end] == '?')) {
      ++end;
    }
    size_t next = end;
    while (next < text.size() && IsSpace(text[next])) ++next;
    if (next == end || next == text.size() || !CanStartSentence(text, next)) {
      i = end;
      continue;
    }
    if (c == '.') {
      size_t word_start = i;
      while (word_start > start && !IsSpace(text[word_start - 1])) --word_start;
      absl::string_view word = text.substr(word_start, i - word_start);
      while (!word.empty() &&
             (word.front() == '"' || word.front() == '(' || word.front() == '\'')) {
        word.remove_prefix(1);
      }
      const bool initial = word.size() == 1 && std::isalpha(static_cast<unsigned char>(word[0]));
      if (initial || IsAbbreviation(word)) {
        i = end;
        continue;
      }
    }
    sentences.push_back(text.substr(start, end - start));
    start = next;
    i = next;
  }
  size_t last_end = text.size();
  while (last_end > start && IsSpace(text[last_end - 1])) --last_end;
  if (last_end > start) sentences.push_back(text.substr(start, last_end - start));
  return sentences;
}

}  // namespace prolong::evaluator::tasks::internal
