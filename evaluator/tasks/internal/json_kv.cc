#include "evaluator/tasks/internal/json_kv.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace prolong::evaluator::tasks::internal {

std::string RandomUuid4(PyRandom& random) {
  std::array<uint8_t, 16> bytes = random.GetRandBits128();
  // uuid.UUID(version=4) overwrites the version nibble and the RFC 4122 variant bits.
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0f]);
  }
  return out;
}

absl::StatusOr<std::vector<Record>> GenerateJsonKv(const JsonKvOptions& options) {
  if (options.num_pairs < options.shots + 2 || options.num_depths < 1 || options.shots < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("json_kv: ", options.num_pairs, " pairs cannot hold a queried pair and ",
                     options.shots, " demo pairs (and ", options.num_depths, " depths)"));
  }
  PyRandom random(options.seed);
  const int n = options.num_pairs;
  std::vector<Record> examples;
  examples.reserve(options.num_samples);
  for (int i = 0; i < options.num_samples; ++i) {
    // Unique keys, as make_kv_retrieval_data.py fills a dict until it holds N of them.
    std::vector<std::pair<std::string, std::string>> pairs;
    absl::flat_hash_set<std::string> keys;
    while (static_cast<int>(pairs.size()) < n) {
      std::string key = RandomUuid4(random);
      std::string value = RandomUuid4(random);
      if (keys.insert(key).second) pairs.emplace_back(std::move(key), std::move(value));
    }
    const int depth_index = i % options.num_depths;
    const int gold = options.num_depths == 1
                         ? 0
                         : static_cast<int>((static_cast<int64_t>(depth_index) * (n - 1) +
                                             (options.num_depths - 1) / 2) /
                                            (options.num_depths - 1));

    std::string context = "JSON data:\n";
    for (int p = 0; p < n; ++p) {
      absl::StrAppend(&context, p == 0 ? "{" : " ", "\"", pairs[p].first, "\": \"", pairs[p].second,
                      "\"", p + 1 < n ? ",\n" : "}");
    }

    // Demo pairs come from the same object, never the queried one: HELMET's demo_template
    // "Key: {key}\nCorresponding value:{value}" with value = " " + value.
    std::vector<std::string> demo_blocks;
    Record demo_pairs = Record::array();
    for (size_t index : random.Sample(n - 1, options.shots)) {
      const auto& pair = pairs[index >= static_cast<size_t>(gold) ? index + 1 : index];
      const std::string quoted = absl::StrCat("\"", pair.first, "\"");
      demo_blocks.push_back(absl::StrCat("Key: ", quoted, "\nCorresponding value: ", pair.second));
      demo_pairs.push_back(Record::array({quoted, pair.second}));
    }
    std::string demos;
    for (size_t d = 0; d < demo_blocks.size(); ++d) {
      absl::StrAppend(&demos, d > 0 ? "\n\n" : "", demo_blocks[d]);
    }
    if (options.shots > 0) demos += "\n\n";

    Record example;
    example["id"] = i;
    example["context"] = std::move(context);
    example["question"] = absl::StrCat("\"", pairs[gold].first, "\"");
    example["answer"] = pairs[gold].second;
    example["num_kvs"] = n;
    example["gold_index"] = gold;
    example["depth"] = n > 1 ? static_cast<double>(gold) / (n - 1) : 0.0;
    example["demo_pairs"] = std::move(demo_pairs);
    example["demos"] = std::move(demos);
    example["k"] = n;
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace prolong::evaluator::tasks::internal
