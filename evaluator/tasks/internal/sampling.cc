// The draws HELMET's loaders share: test samples by key, shuffled distinct demos, balanced ICL
// labels.
#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/numpy_random.h"
#include "evaluator/tasks/internal/py_random.h"
#include "evaluator/tasks/internal/py_text.h"

namespace prolong::evaluator::tasks::internal {

std::vector<size_t> BalanceLabels(const std::vector<int64_t>& labels, size_t shots, uint64_t seed) {
  PyRandom random(seed);
  // {label: [items]} in order of first appearance, as the dict comprehension builds it.
  std::vector<std::vector<size_t>> groups;
  absl::flat_hash_map<int64_t, size_t> group_of;
  for (size_t i = 0; i < labels.size(); ++i) {
    auto [it, inserted] = group_of.try_emplace(labels[i], groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  if (groups.empty() || shots == 0) return {};
  const size_t num_rounds = static_cast<size_t>(
      std::ceil(static_cast<double>(shots) / static_cast<double>(groups.size())));
  std::vector<std::vector<size_t>> rounds(num_rounds);
  for (const std::vector<size_t>& samples : groups) {
    // HELMET's quirk kept: the first draw takes num_rounds % len(samples) (0 when they are
    // equal), then draws are added until there are num_rounds.
    std::vector<size_t> indices = random.Sample(samples.size(), num_rounds % samples.size());
    while (indices.size() < num_rounds) {
      std::vector<size_t> more =
          random.Sample(samples.size(), std::min(num_rounds - indices.size(), samples.size()));
      indices.insert(indices.end(), more.begin(), more.end());
    }
    for (size_t i = 0; i < indices.size(); ++i) rounds[i].push_back(samples[indices[i]]);
  }
  std::vector<size_t> out;
  for (std::vector<size_t>& round : rounds) {
    random.Shuffle(round);
    out.insert(out.end(), round.begin(), round.end());
  }
  if (out.size() > shots) out.resize(shots);
  return out;
}

absl::StatusOr<std::vector<size_t>> ShuffledDistinct(const std::vector<std::string>& keys,
                                                     uint64_t seed, size_t count) {
  std::vector<size_t> out;
  if (count == 0) return out;
  absl::flat_hash_set<std::string> seen;
  for (size_t index : NumpyPermutation(seed, keys.size())) {
    if (!seen.insert(keys[index]).second) continue;
    out.push_back(index);
    if (out.size() == count) return out;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "asked for ", count, " demos but the demo records hold ", out.size(), " distinct ones"));
}

absl::StatusOr<std::vector<size_t>> SampleByKey(const std::vector<nlohmann::ordered_json>& keys,
                                                uint64_t seed, size_t count) {
  bool all_integers = true, all_strings = true;
  for (const auto& key : keys) {
    all_integers &= key.is_number_integer();
    all_strings &= key.is_string();
  }
  if (!all_integers && !all_strings) {
    return absl::InvalidArgumentError("sample keys mix types; Python cannot sort them");
  }
  // sorted(set(keys)).
  std::vector<nlohmann::ordered_json> distinct = keys;
  auto less = [all_integers](const nlohmann::ordered_json& a, const nlohmann::ordered_json& b) {
    if (all_integers) return a.get<int64_t>() < b.get<int64_t>();
    // UTF-8 byte order is code point order, Python's string order.
    return a.get_ref<const std::string&>() < b.get_ref<const std::string&>();
  };
  std::sort(distinct.begin(), distinct.end(), less);
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  PyRandom random(seed);
  absl::flat_hash_set<std::string> drawn;
  for (size_t index : random.Sample(distinct.size(), std::min(count, distinct.size()))) {
    drawn.insert(distinct[index].dump());
  }
  std::vector<size_t> kept;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (drawn.contains(keys[i].dump())) kept.push_back(i);
  }
  return kept;
}

}  // namespace prolong::evaluator::tasks::internal
