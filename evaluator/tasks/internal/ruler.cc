#include "evaluator/tasks/internal/ruler.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "evaluator/tasks/internal/json_kv.h"
#include "evaluator/tasks/internal/py_random.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/sentences.h"
#include "evaluator/tasks/internal/word_lists.h"

namespace prolong::evaluator::tasks::internal {
namespace {

constexpr char kNoiseHaystack[] =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";

std::string Needle(const std::string& type_needle_v, const std::string& key,
                   const std::string& value) {
  return absl::StrCat("One of the special magic ", type_needle_v, " for ", key, " is: ", value,
                      ".");
}

struct Generated {
  std::string context;
  std::string query;
  std::vector<std::string> answers;
  std::vector<std::string> needle_keys;
};

class NiahGenerator {
 public:
  NiahGenerator(const RulerOptions& options, PyRandom& random)
      : options_(options), spec_(options.spec), random_(random) {
    if (spec_.haystack == RulerNiahSpec::Haystack::kEssay) {
      // re.sub(r'\s+', " ", essay).split(" ").
      for (absl::string_view word : absl::StrSplit(CollapseWhitespace(options.essay), ' ')) {
        essay_words_.emplace_back(word);
      }
    }
  }

  // niah.py's generate_random.
  std::string Random(const std::string& type) {
    if (type == "numbers") return std::to_string(random_.RandInt(1000000, 9999999));
    if (type == "uuids") return RandomUuid4(random_);
    return WordAt(static_cast<size_t>(random_.RandBelow(NumWords())));
  }

  // niah.py's generate_input_output(num_haystack).
  Generated Generate(int64_t num_haystack) {
    const int num_keys = std::max(spec_.num_needle_k, spec_.num_needle_q);
    Generated out;
    std::vector<std::vector<std::string>> values;
    std::vector<std::string> needles;
    absl::flat_hash_set<std::string> used_keys, used_values;
    for (int k = 0; k < num_keys; ++k) {
      out.needle_keys.push_back(Random(spec_.key_type));
      used_keys.insert(out.needle_keys.back());
      values.emplace_back();
      for (int v = 0; v < spec_.num_needle_v; ++v) {
        values.back().push_back(Random(spec_.value_type));
        used_values.insert(values.back().back());
        needles.push_back(Needle(spec_.value_type, out.needle_keys.back(), values.back().back()));
      }
    }
    // RULER shuffles with a fresh generator seeded with the run's seed, every time.
    PyRandom(options_.seed).Shuffle(needles);

    if (spec_.haystack == RulerNiahSpec::Haystack::kEssay) {
      out.context = EssayContext(num_haystack, needles);
    } else {
      std::vector<std::string> sentences;
      sentences.reserve(num_haystack + needles.size());
      for (int64_t i = 0; i < num_haystack; ++i) {
        if (spec_.haystack == RulerNiahSpec::Haystack::kNoise) {
          sentences.push_back(kNoiseHaystack);
          continue;
        }
        std::string key, value;
        do {
          key = Random(spec_.key_type);
          value = Random(spec_.value_type);
        } while (used_keys.contains(key) || used_values.contains(value));
        sentences.push_back(Needle(spec_.value_type, key, value));
      }
      std::vector<size_t> indexes = random_.Sample(num_haystack, needles.size());
      std::sort(indexes.rbegin(), indexes.rend());
      for (size_t i = 0; i < indexes.size(); ++i) {
        sentences.insert(sentences.begin() + indexes[i], needles[i]);
      }
      out.context = absl::StrJoin(sentences, "\n");
    }

    std::vector<size_t> asked = random_.Sample(num_keys, spec_.num_needle_q);
    std::vector<std::string> queries;
    for (size_t index : asked) {
      queries.push_back(out.needle_keys[index]);
      out.answers.insert(out.answers.end(), values[index].begin(), values[index].end());
    }
    if (queries.size() > 1) {
      out.query = absl::StrCat(absl::StrJoin(queries.begin(), queries.end() - 1, ", "), ", and ",
                               queries.back());
    } else {
      out.query = queries[0];
    }
    return out;
  }

  // The prompt's tokens plus the generation budget, as niah.py measures an input.
  absl::StatusOr<int64_t> Length(const Generated& generated, Record& fields) {
    fields["context"] = generated.context;
    fields["query"] = generated.query;
    absl::StatusOr<std::string> prompt = FormatTemplate(options_.templates.prompt, fields);
    if (!prompt.ok()) return prompt.status();
    const int64_t bos = options_.tokenizer->bos_id().has_value() ? 1 : 0;
    return static_cast<int64_t>(options_.tokenizer->Encode(*prompt).size()) + bos +
           options_.tokens_to_generate;
  }

 private:
  std::string EssayContext(int64_t num_haystack, const std::vector<std::string>& needles) {
    std::vector<absl::string_view> words;
    words.reserve(num_haystack);
    // The essay repeats as often as needed, then is cut to num_haystack words.
    for (int64_t i = 0; i < num_haystack && !essay_words_.empty(); ++i) {
      words.push_back(essay_words_[i % essay_words_.size()]);
    }
    const std::string text = PyStrip(absl::StrJoin(words, " "));
    std::vector<absl::string_view> sentences = SplitSentences(text);
    const int64_t count = static_cast<int64_t>(sentences.size());
    std::vector<int64_t> positions;
    for (size_t index : random_.Sample(RulerDepths().size(), needles.size())) {
      const double depth = RulerDepths()[index];
      positions.push_back(static_cast<int64_t>(count * (depth / 100)));
    }
    std::sort(positions.begin(), positions.end());
    positions.insert(positions.begin(), 0);
    positions.push_back(count);
    std::vector<std::string> parts;
    for (size_t i = 1; i < positions.size(); ++i) {
      parts.push_back(absl::StrJoin(sentences.begin() + positions[i - 1],
                                    sentences.begin() + positions[i], " "));
      if (i - 1 < needles.size()) parts.push_back(needles[i - 1]);
    }
    return absl::StrJoin(parts, " ");
  }

  const RulerOptions& options_;
  const RulerNiahSpec& spec_;
  PyRandom& random_;
  std::vector<std::string> essay_words_;
};

}  // namespace

const std::vector<int>& RulerDepths() {
  static const auto* depths = new std::vector<int>{
      0,  3,  5,  8,  10, 13, 15, 18, 21, 23, 26, 28, 31, 33, 36, 38, 41, 44, 46, 49,
      51, 54, 56, 59, 62, 64, 67, 69, 72, 74, 77, 79, 82, 85, 87, 90, 92, 95, 97, 100};
  return *depths;
}

absl::StatusOr<RulerNiahSpec> RulerSpecFor(absl::string_view task_name) {
  using Haystack = RulerNiahSpec::Haystack;
  RulerNiahSpec spec;
  if (task_name == "ruler_niah_s_1") {
    spec = {Haystack::kNoise, "words", "numbers", 1, 1, 1};
  } else if (task_name == "ruler_niah_s_2") {
    spec = {Haystack::kEssay, "words", "numbers", 1, 1, 1};
  } else if (task_name == "ruler_niah_s_3") {
    spec = {Haystack::kEssay, "words", "uuids", 1, 1, 1};
  } else if (task_name == "ruler_niah_mk_1") {
    spec = {Haystack::kEssay, "words", "numbers", 4, 1, 1};
  } else if (task_name == "ruler_niah_mk_2") {
    spec = {Haystack::kNeedle, "words", "numbers", 1, 1, 1};
  } else if (task_name == "ruler_niah_mk_3") {
    spec = {Haystack::kNeedle, "uuids", "uuids", 1, 1, 1};
  } else if (task_name == "ruler_niah_mv") {
    spec = {Haystack::kEssay, "words", "numbers", 1, 4, 1};
  } else if (task_name == "ruler_niah_mq") {
    spec = {Haystack::kEssay, "words", "numbers", 1, 1, 4};
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("'", task_name, "' is not one of RULER's needle-in-a-haystack tasks"));
  }
  return spec;
}

absl::StatusOr<std::vector<Record>> GenerateRulerNiah(const RulerOptions& options) {
  const RulerNiahSpec& spec = options.spec;
  if (options.tokenizer == nullptr) {
    return absl::InvalidArgumentError("RULER: a tokenizer is needed to size the haystack");
  }
  if (spec.haystack == RulerNiahSpec::Haystack::kEssay &&
      options.essay.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError("RULER: the essay haystack is empty");
  }
  if (spec.num_needle_q > std::max(spec.num_needle_k, spec.num_needle_q) || spec.num_needle_v < 1 ||
      spec.num_needle_k < 1 || spec.num_needle_q < 1) {
    return absl::InvalidArgumentError("RULER: needle counts must be positive");
  }
  PyRandom random(options.seed);
  NiahGenerator generator(options, random);

  Record fields;
  // RULER's template turns plural into singular when a single value is asked for.
  std::string type_needle_v = spec.value_type;
  if (spec.num_needle_q * spec.num_needle_v == 1) type_needle_v.pop_back();
  fields["type_needle_v"] = type_needle_v;

  // niah.py's step: 500 essay words, 25 lines otherwise (5 below 4096 tokens).
  int64_t incremental = spec.haystack == RulerNiahSpec::Haystack::kEssay ? 500 : 25;
  if (spec.haystack != RulerNiahSpec::Haystack::kEssay && options.max_seq_length < 4096) {
    incremental = 5;
  }
  const int64_t max_length = options.max_seq_length;

  // Estimate tokens per haystack unit, then binary-search the largest haystack that fits.
  absl::StatusOr<int64_t> sample_length = generator.Length(generator.Generate(incremental), fields);
  if (!sample_length.ok()) return sample_length.status();
  const double tokens_per_haystack =
      static_cast<double>(*sample_length - options.tokens_to_generate) / incremental;
  const int64_t estimated = static_cast<int64_t>((max_length / tokens_per_haystack) * 3);
  int64_t lower = incremental, upper = std::max(estimated, incremental * 2);
  int64_t optimal = -1;
  while (lower <= upper) {
    const int64_t mid = (lower + upper) / 2;
    absl::StatusOr<int64_t> length = generator.Length(generator.Generate(mid), fields);
    if (!length.ok()) return length.status();
    if (*length <= max_length) {
      optimal = mid;
      lower = mid + 1;
    } else {
      upper = mid - 1;
    }
  }
  const int64_t num_haystack = optimal > 0 ? optimal : incremental;

  std::vector<Record> examples;
  for (int index = 0; index < options.num_samples; ++index) {
    int64_t used = num_haystack;
    Generated generated;
    int64_t length = 0;
    while (true) {
      generated = generator.Generate(used);
      absl::StatusOr<int64_t> measured = generator.Length(generated, fields);
      if (!measured.ok()) return measured.status();
      length = *measured;
      if (length <= max_length) break;
      if (used <= incremental) {
        return absl::FailedPreconditionError(absl::StrCat("RULER: even ", used,
                                                          " haystack units make ", length,
                                                          " tokens, over the length ", max_length));
      }
      used -= incremental;
    }
    Record example;
    example["index"] = index;
    example["context"] = std::move(generated.context);
    example["query"] = generated.query;
    example["type_needle_v"] = type_needle_v;
    example["outputs"] = generated.answers;
    example["length"] = length;
    example["needle_keys"] = generated.needle_keys;
    // load_ruler's process_example.
    example["question"] = generated.query;
    example["example"] = "";
    example["answer"] = generated.answers;
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace prolong::evaluator::tasks::internal
