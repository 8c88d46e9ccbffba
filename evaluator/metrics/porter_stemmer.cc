// Follows nltk/stem/porter.py (NLTK 3.8, mode NLTK_EXTENSIONS) rule for rule, including the
// order in which rules are tried: the first rule whose suffix matches decides, and a failed
// condition stops the step ("ement" that fails does not fall through to "ment").
#include "evaluator/metrics/porter_stemmer.h"

#include <string>
#include <string_view>

#include "evaluator/metrics/internal/python_text.h"

namespace prolong::evaluator::metrics {
namespace {

using Word = std::u32string;
using Suffix = std::u32string_view;

bool EndsWith(const Word& word, Suffix suffix) {
  return word.size() >= suffix.size() && Suffix(word).substr(word.size() - suffix.size()) == suffix;
}

Word Drop(const Word& word, size_t count) { return word.substr(0, word.size() - count); }

bool IsConsonant(const Word& word, size_t i) {
  // Iterative form of the paper's definition: a y is a consonant at the start or after a vowel.
  bool consonant = true;
  for (size_t k = 0; k <= i; ++k) {
    const char32_t c = word[k];
    if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') {
      consonant = false;
    } else if (c == 'y') {
      consonant = k == 0 ? true : !consonant;
    } else {
      consonant = true;
    }
  }
  return consonant;
}

// m in [C](VC){m}[V]: the number of vowel-consonant transitions.
int Measure(const Word& stem) {
  int m = 0;
  bool previous_vowel = false;
  bool consonant = true;
  for (size_t k = 0; k < stem.size(); ++k) {
    const char32_t c = stem[k];
    if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') {
      consonant = false;
    } else if (c == 'y') {
      consonant = k == 0 ? true : !consonant;
    } else {
      consonant = true;
    }
    if (consonant && previous_vowel) ++m;
    previous_vowel = !consonant;
  }
  return m;
}

bool ContainsVowel(const Word& stem) {
  for (size_t i = 0; i < stem.size(); ++i) {
    if (!IsConsonant(stem, i)) return true;
  }
  return false;
}

bool EndsDoubleConsonant(const Word& word) {
  const size_t n = word.size();
  return n >= 2 && word[n - 1] == word[n - 2] && IsConsonant(word, n - 1);
}

// *o: consonant-vowel-consonant, the last not w, x or y; NLTK also accepts a two-letter
// vowel-consonant word.
bool EndsCvc(const Word& word) {
  const size_t n = word.size();
  if (n >= 3 && IsConsonant(word, n - 3) && !IsConsonant(word, n - 2) && IsConsonant(word, n - 1) &&
      word[n - 1] != 'w' && word[n - 1] != 'x' && word[n - 1] != 'y') {
    return true;
  }
  return n == 2 && !IsConsonant(word, 0) && IsConsonant(word, 1);
}

enum class Condition {
  kNone,
  kPositiveMeasure,  // m > 0
  kMeasureAbove1,    // m > 1
  kIon,              // m > 1 and the stem ends in s or t
  kLogi,             // m > 0 for the word less "ogi" (the l stays with the stem)
};

struct Rule {
  Suffix suffix;
  Suffix replacement;
  Condition condition;
};

bool Holds(Condition condition, const Word& stem, const Word& word) {
  switch (condition) {
    case Condition::kNone:
      return true;
    case Condition::kPositiveMeasure:
      return Measure(stem) > 0;
    case Condition::kMeasureAbove1:
      return Measure(stem) > 1;
    case Condition::kIon:
      return Measure(stem) > 1 && (stem.back() == 's' || stem.back() == 't');
    case Condition::kLogi:
      return Measure(Drop(word, 3)) > 0;
  }
  return false;
}

template <size_t N>
Word ApplyRules(const Word& word, const Rule (&rules)[N]) {
  for (const Rule& rule : rules) {
    if (!EndsWith(word, rule.suffix)) continue;
    Word stem = Drop(word, rule.suffix.size());
    if (!Holds(rule.condition, stem, word)) return word;
    return stem.append(rule.replacement);
  }
  return word;
}

Word Step1a(const Word& word) {
  // NLTK: "dies" -> "die" while "flies" -> "fli".
  if (word.size() == 4 && EndsWith(word, U"ies")) return Drop(word, 3) + U"ie";
  static constexpr Rule kRules[] = {
      {U"sses", U"ss", Condition::kNone},
      {U"ies", U"i", Condition::kNone},
      {U"ss", U"ss", Condition::kNone},
      {U"s", U"", Condition::kNone},
  };
  return ApplyRules(word, kRules);
}

Word Step1b(const Word& word) {
  // NLTK: "died" -> "die" while "spied" -> "spi".
  if (EndsWith(word, U"ied")) return Drop(word, 3) + (word.size() == 4 ? U"ie" : U"i");
  if (EndsWith(word, U"eed")) {
    const Word stem = Drop(word, 3);
    return Measure(stem) > 0 ? stem + U"ee" : word;
  }
  Word stem;
  bool removed = false;
  for (Suffix suffix : {Suffix(U"ed"), Suffix(U"ing")}) {
    if (EndsWith(word, suffix)) {
      stem = Drop(word, suffix.size());
      if (ContainsVowel(stem)) {
        removed = true;
        break;
      }
    }
  }
  if (!removed) return word;

  // The tidying rules after -ed/-ing, tried in NLTK's order.
  for (auto [suffix, replacement] :
       {std::pair<Suffix, Suffix>{U"at", U"ate"}, {U"bl", U"ble"}, {U"iz", U"ize"}}) {
    if (EndsWith(stem, suffix)) return Drop(stem, suffix.size()).append(replacement);
  }
  const char32_t last = stem.back();
  const bool keeps_double = last == 'l' || last == 's' || last == 'z';
  if (EndsDoubleConsonant(stem)) return keeps_double ? stem : Drop(stem, 1);
  // NLTK marks the double-consonant rule with the suffix "*d" and also tests it as a literal
  // suffix; a stem ending in "*d" loses the "*".
  if (EndsWith(stem, U"*d")) return Drop(stem, 2) + last;
  if (Measure(stem) == 1 && EndsCvc(stem)) return stem + U"e";
  return stem;
}

Word Step1c(const Word& word) {
  // NLTK: y -> i only after a consonant that is not the whole stem ("happy" -> "happi",
  // "enjoy" and "sky" stay).
  if (!EndsWith(word, U"y")) return word;
  Word stem = Drop(word, 1);
  if (stem.size() > 1 && IsConsonant(stem, stem.size() - 1)) return stem + U"i";
  return word;
}

Word Step2(const Word& word) {
  // NLTK applies alli -> al first and runs the step again on the result.
  if (EndsWith(word, U"alli") && Measure(Drop(word, 4)) > 0) {
    return Step2(Drop(word, 4) + U"al");
  }
  static constexpr Rule kRules[] = {
      {U"ational", U"ate", Condition::kPositiveMeasure},
      {U"tional", U"tion", Condition::kPositiveMeasure},
      {U"enci", U"ence", Condition::kPositiveMeasure},
      {U"anci", U"ance", Condition::kPositiveMeasure},
      {U"izer", U"ize", Condition::kPositiveMeasure},
      {U"bli", U"ble", Condition::kPositiveMeasure},
      {U"alli", U"al", Condition::kPositiveMeasure},
      {U"entli", U"ent", Condition::kPositiveMeasure},
      {U"eli", U"e", Condition::kPositiveMeasure},
      {U"ousli", U"ous", Condition::kPositiveMeasure},
      {U"ization", U"ize", Condition::kPositiveMeasure},
      {U"ation", U"ate", Condition::kPositiveMeasure},
      {U"ator", U"ate", Condition::kPositiveMeasure},
      {U"alism", U"al", Condition::kPositiveMeasure},
      {U"iveness", U"ive", Condition::kPositiveMeasure},
      {U"fulness", U"ful", Condition::kPositiveMeasure},
      {U"ousness", U"ous", Condition::kPositiveMeasure},
      {U"aliti", U"al", Condition::kPositiveMeasure},
      {U"iviti", U"ive", Condition::kPositiveMeasure},
      {U"biliti", U"ble", Condition::kPositiveMeasure},
      {U"fulli", U"ful", Condition::kPositiveMeasure},
      {U"logi", U"log", Condition::kLogi},
  };
  return ApplyRules(word, kRules);
}

Word Step3(const Word& word) {
  static constexpr Rule kRules[] = {
      {U"icate", U"ic", Condition::kPositiveMeasure},
      {U"ative", U"", Condition::kPositiveMeasure},
      {U"alize", U"al", Condition::kPositiveMeasure},
      {U"iciti", U"ic", Condition::kPositiveMeasure},
      {U"ical", U"ic", Condition::kPositiveMeasure},
      {U"ful", U"", Condition::kPositiveMeasure},
      {U"ness", U"", Condition::kPositiveMeasure},
  };
  return ApplyRules(word, kRules);
}

Word Step4(const Word& word) {
  static constexpr Rule kRules[] = {
      {U"al", U"", Condition::kMeasureAbove1},    {U"ance", U"", Condition::kMeasureAbove1},
      {U"ence", U"", Condition::kMeasureAbove1},  {U"er", U"", Condition::kMeasureAbove1},
      {U"ic", U"", Condition::kMeasureAbove1},    {U"able", U"", Condition::kMeasureAbove1},
      {U"ible", U"", Condition::kMeasureAbove1},  {U"ant", U"", Condition::kMeasureAbove1},
      {U"ement", U"", Condition::kMeasureAbove1}, {U"ment", U"", Condition::kMeasureAbove1},
      {U"ent", U"", Condition::kMeasureAbove1},   {U"ion", U"", Condition::kIon},
      {U"ou", U"", Condition::kMeasureAbove1},    {U"ism", U"", Condition::kMeasureAbove1},
      {U"ate", U"", Condition::kMeasureAbove1},   {U"iti", U"", Condition::kMeasureAbove1},
      {U"ous", U"", Condition::kMeasureAbove1},   {U"ive", U"", Condition::kMeasureAbove1},
      {U"ize", U"", Condition::kMeasureAbove1},
  };
  return ApplyRules(word, kRules);
}

Word Step5a(const Word& word) {
  // Both rules for a final e are tried (m > 1, then m = 1 and not *o).
  if (!EndsWith(word, U"e")) return word;
  Word stem = Drop(word, 1);
  const int m = Measure(stem);
  if (m > 1 || (m == 1 && !EndsCvc(stem))) return stem;
  return word;
}

Word Step5b(const Word& word) {
  if (EndsWith(word, U"ll") && Measure(Drop(word, 1)) > 1) return Drop(word, 1);
  return word;
}

// NLTK's irregular forms, looked up before anything else.
const char32_t* IrregularStem(const Word& word) {
  static constexpr std::pair<Suffix, const char32_t*> kForms[] = {
      {U"sky", U"sky"},         {U"skies", U"sky"},        {U"dying", U"die"},
      {U"lying", U"lie"},       {U"tying", U"tie"},        {U"news", U"news"},
      {U"innings", U"inning"},  {U"inning", U"inning"},    {U"outings", U"outing"},
      {U"outing", U"outing"},   {U"cannings", U"canning"}, {U"canning", U"canning"},
      {U"howe", U"howe"},       {U"proceed", U"proceed"},  {U"exceed", U"exceed"},
      {U"succeed", U"succeed"},
  };
  for (const auto& [form, stem] : kForms) {
    if (Suffix(word) == form) return stem;
  }
  return nullptr;
}

}  // namespace

std::string PorterStem(absl::string_view utf8_word) {
  const Word word = internal::DecodeUtf8(utf8_word);
  // NLTK looks the word up before lowercasing it; the forms are all lowercase.
  if (const char32_t* irregular = IrregularStem(word)) return internal::EncodeUtf8(irregular);
  Word stem = internal::PythonLower(word);
  // Length of the word as given, not lowercased (U+0130 lowercases to two code points).
  if (word.size() <= 2) return internal::EncodeUtf8(stem);
  stem = Step1a(stem);
  stem = Step1b(stem);
  stem = Step1c(stem);
  stem = Step2(stem);
  stem = Step3(stem);
  stem = Step4(stem);
  stem = Step5a(stem);
  stem = Step5b(stem);
  return internal::EncodeUtf8(stem);
}

}  // namespace prolong::evaluator::metrics
