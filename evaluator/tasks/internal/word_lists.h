// The words RULER's needles are made of. RULER draws "adjective-noun" keys from wonderwords'
// lists (sorted(set(f"{adj}-{noun}"))); those lists are not available offline, so these are our
// own: lowercase ASCII words, sorted and unique, so that index i of the product below is the
// i-th string of the sorted "adjective-noun" list, as RULER indexes its list.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_WORD_LISTS_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_WORD_LISTS_H_

#include <cstddef>
#include <string>

#include "absl/types/span.h"

namespace prolong::evaluator::tasks::internal {

absl::Span<const char* const> Adjectives();
absl::Span<const char* const> Nouns();

// Number of "adjective-noun" words.
size_t NumWords();

// The i-th "adjective-noun" word in sorted order, i < NumWords().
std::string WordAt(size_t i);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_WORD_LISTS_H_
