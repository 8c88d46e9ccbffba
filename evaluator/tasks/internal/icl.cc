// HELMET's load_icl: many-shot in-context classification with labels mapped to random integers
// (TREC coarse and fine, BANKING77, CLINC150, NLU), "balance" variant as all its configs use.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/numpy_random.h"
#include "evaluator/tasks/internal/py_random.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/records.h"

namespace prolong::evaluator::tasks::internal {
namespace {

struct IclDataset {
  const char* label_field;
  int64_t num_labels;
  bool split_from_train;  // NLU: one split, divided by train_test_split(test_size=0.1, seed).
};

absl::StatusOr<IclDataset> DatasetFor(const std::string& name) {
  if (name == "icl_trec_coarse") return IclDataset{"coarse_label", 6, false};
  if (name == "icl_trec_fine") return IclDataset{"fine_label", 50, false};
  if (name == "icl_banking77") return IclDataset{"label", 77, false};
  if (name == "icl_clinic150") return IclDataset{"intent", 151, false};
  if (name == "icl_nlu") return IclDataset{"label", 68, true};
  return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not an ICL task"));
}

struct Item {
  SourceRecord source;
  std::string text;
  int64_t label;
};

absl::StatusOr<std::vector<Item>> ReadItems(const std::string& path, const IclDataset& dataset,
                                            bool strict, LoadReport& report) {
  auto validate = [&dataset](const Json& record) -> absl::Status {
    RETURN_IF_ERROR(GetString(record, "text").status());
    ASSIGN_OR_RETURN(int64_t label, GetInt(record, dataset.label_field));
    if (label < 0 || label >= dataset.num_labels) {
      return absl::InvalidArgumentError(absl::StrCat("field '", dataset.label_field, "' is ", label,
                                                     ", outside [0, ", dataset.num_labels, ")"));
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::vector<SourceRecord> records,
                   ReadAllRecords(path, strict, report, validate));
  std::vector<Item> items;
  items.reserve(records.size());
  for (SourceRecord& record : records) {
    Item item;
    item.text = record.json["text"].get<std::string>();
    item.label = record.json[dataset.label_field].get<int64_t>();
    item.source = std::move(record);
    items.push_back(std::move(item));
  }
  return items;
}

template <typename T>
std::vector<T> Select(std::vector<T>& items, const std::vector<size_t>& indices) {
  std::vector<T> out;
  out.reserve(indices.size());
  for (size_t i : indices) out.push_back(items[i]);
  return out;
}

std::vector<int64_t> Labels(const std::vector<Item>& items) {
  std::vector<int64_t> labels;
  for (const Item& item : items) labels.push_back(item.label);
  return labels;
}

}  // namespace

absl::StatusOr<std::vector<Record>> LoadIcl(const LoaderContext& context, LoadReport& report) {
  ASSIGN_OR_RETURN(IclDataset dataset, DatasetFor(context.config->name));
  std::vector<Item> train, test;
  if (dataset.split_from_train) {
    ASSIGN_OR_RETURN(std::vector<Item> all,
                     ReadItems(context.test_path, dataset, context.strict, report));
    // datasets' train_test_split: a numpy permutation, the test part first.
    const size_t n_test = static_cast<size_t>(std::ceil(0.1 * static_cast<double>(all.size())));
    const std::vector<size_t> permutation = NumpyPermutation(context.seed, all.size());
    test = Select(all, std::vector<size_t>(permutation.begin(), permutation.begin() + n_test));
    train = Select(all, std::vector<size_t>(permutation.begin() + n_test, permutation.end()));
  } else {
    ASSIGN_OR_RETURN(test, ReadItems(context.test_path, dataset, context.strict, report));
    LoadReport train_report;
    ASSIGN_OR_RETURN(train, ReadItems(context.demo_path, dataset, context.strict, train_report));
  }
  if (train.empty() && context.shots > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(context.demo_path, ": no training examples to draw demos from"));
  }

  // Too many test examples: shuffle them, then take a label-balanced subset.
  if (context.max_samples > 0 && test.size() > static_cast<size_t>(context.max_samples)) {
    test = Select(test, NumpyPermutation(context.seed, test.size()));
    test = Select(test, BalanceLabels(Labels(test), context.max_samples, context.seed));
  }

  const std::vector<int64_t> train_labels = Labels(train);
  std::vector<Record> examples;
  examples.reserve(test.size());
  for (const Item& sample : test) {
    // A seed per example, fixed by its text and the run's seed.
    const uint32_t local_seed = Sha256PlusSeedMod2To31(sample.text, context.seed);
    const std::vector<size_t> demos = BalanceLabels(train_labels, context.shots, local_seed);
    // Labels become random integers: label_mapping[label], a shuffle of range(num_labels).
    std::vector<int64_t> mapping(dataset.num_labels);
    for (int64_t i = 0; i < dataset.num_labels; ++i) mapping[i] = i;
    PyRandom(local_seed).Shuffle(mapping);

    std::vector<std::string> blocks;
    blocks.reserve(demos.size());
    for (size_t d : demos) {
      blocks.push_back(absl::StrCat(train[d].text, "\nlabel: ", mapping[train[d].label]));
    }
    Record example = sample.source.json;
    example["context"] = absl::StrJoin(blocks, "\n\n");
    example["question"] = sample.text;
    example["answer"] = std::to_string(mapping[sample.label]);
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace prolong::evaluator::tasks::internal
