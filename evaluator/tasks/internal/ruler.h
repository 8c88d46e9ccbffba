// RULER's needle-in-a-haystack tasks, generated from a seed as RULER's
// scripts/data/synthetic/niah.py generates them (NVIDIA/RULER) with the settings of its
// synthetic.yaml, in the fields HELMET's load_ruler reads. HELMET's recall category runs
// niah_multikey_2 (MK-needle), niah_multikey_3 (MK-UUID) and niah_multivalue (MV).
//
// As niah.py: keys and values drawn with Python's `random` from the seed (7-digit numbers,
// "adjective-noun" words, UUID4s), the needle "One of the special magic {type_needle_v} for {key}
// is: {value}.", needles shuffled with a fresh random.Random(seed), a haystack of distractor
// needles (one per line) or of essay sentences with the needles inserted at depths drawn from
// RULER's 40 evenly spaced ones, and the haystack size found by binary search so that the
// prompt plus 128 generated tokens fits the length. Where we differ, and why:
//  - the word list is ours (word_lists.h); distractor needles never reuse a queried key or a
//    gold value, so each needle occurs exactly as designed (RULER leaves that to chance);
//  - the essay's sentences come from sentences.h rather than NLTK's Punkt;
//  - lengths are counted in the tokenizer we are given, over HELMET's prompt.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_RULER_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_RULER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/tokenizer.h"
#include "evaluator/tasks/task_data.h"

namespace prolong::evaluator::tasks::internal {

struct RulerNiahSpec {
  enum class Haystack { kNoise, kEssay, kNeedle };
  Haystack haystack = Haystack::kEssay;
  std::string key_type = "words";  // "words", "numbers" or "uuids".
  std::string value_type = "numbers";
  int num_needle_k = 1;
  int num_needle_v = 1;
  int num_needle_q = 1;
};

// RULER's synthetic.yaml for HELMET's task names (ruler_niah_s_1..3, ruler_niah_mk_1..3,
// ruler_niah_mq, ruler_niah_mv). INVALID_ARGUMENT for another name.
absl::StatusOr<RulerNiahSpec> RulerSpecFor(absl::string_view task_name);

struct RulerOptions {
  RulerNiahSpec spec;
  int64_t max_seq_length = 0;    // Prompt tokens + tokens_to_generate fit in it.
  int tokens_to_generate = 128;  // RULER's niah setting.
  int num_samples = 0;
  uint64_t seed = 42;
  PromptTemplates templates;  // HELMET's, to count the prompt's tokens.
  const tokenizer::Tokenizer* tokenizer = nullptr;
  std::string essay;  // The essay haystack's text (kEssay only).
};

// Records with "index", "context", "query", "type_needle_v" (singular when one value is asked
// for, as RULER's template says "A special magic number"), "outputs" and "answer" (the gold
// values, RULER's recall counts them), "question" (the query), "example" (""), "length" (prompt
// tokens + tokens_to_generate) and "needle_keys" (every key placed as a needle).
// FAILED_PRECONDITION when not even the smallest haystack fits the length.
absl::StatusOr<std::vector<Record>> GenerateRulerNiah(const RulerOptions& options);

// RULER's depths: np.round(np.linspace(0, 100, 40)).astype(int).
const std::vector<int>& RulerDepths();

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_RULER_H_
