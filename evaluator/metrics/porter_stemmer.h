// The Porter stemmer exactly as NLTK's `PorterStemmer()` (its default NLTK_EXTENSIONS mode)
// stems, which is what rouge-score calls with use_stemmer=True.
#ifndef PROLONG_EVALUATOR_METRICS_PORTER_STEMMER_H_
#define PROLONG_EVALUATOR_METRICS_PORTER_STEMMER_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prolong::evaluator::metrics {

// NLTK's PorterStemmer().stem(word): lowercases the word as Python's str.lower() does, returns
// words of one or two characters and NLTK's irregular forms ("skies" -> "sky") as they are,
// and runs steps 1a to 5b with NLTK's extensions otherwise. Any UTF-8 word is accepted; only
// a, e, i, o, u (and y after a consonant) are vowels. Pure and thread-safe.
std::string PorterStem(absl::string_view word);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_PORTER_STEMMER_H_
