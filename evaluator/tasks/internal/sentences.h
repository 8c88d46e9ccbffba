// Sentence splitting for RULER's essay haystack. RULER inserts its needles between sentences
// that NLTK's Punkt tokenizer (`sent_tokenize`) finds; Punkt's trained English model is not
// available here, so this follows its main rules: a sentence ends at '.', '!' or '?' (and any
// closing quotes or brackets after it) followed by whitespace and a word that starts with an
// uppercase letter, a digit or an opening quote, unless the word before the period is a common
// abbreviation or a single letter (an initial). Sentences may come out a little differently
// from Punkt's on unusual text; where needles go stays RULER's rule.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_SENTENCES_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_SENTENCES_H_

#include <vector>

#include "absl/strings/string_view.h"

namespace prolong::evaluator::tasks::internal {

// The sentences of `text`, without the whitespace between them; views into `text`.
std::vector<absl::string_view> SplitSentences(absl::string_view text);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_SENTENCES_H_
