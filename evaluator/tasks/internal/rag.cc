// HELMET's load_qa: KILT questions with retrieved passages (NQ, TriviaQA, HotpotQA, PopQA).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/records.h"

namespace prolong::evaluator::tasks::internal {
namespace {

// "Document (Title: {title}): {text}" over every passage, joined by blank lines.
absl::StatusOr<std::string> Passages(const Json& record) {
  ASSIGN_OR_RETURN(const Json* ctxs, GetField(record, "ctxs"));
  if (!ctxs->is_array()) return absl::InvalidArgumentError("field 'ctxs' is not a list");
  std::vector<std::string> passages;
  for (size_t i = 0; i < ctxs->size(); ++i) {
    const Json& ctx = (*ctxs)[i];
    if (!ctx.is_object() || !ctx.contains("title") || !ctx.contains("text")) {
      return absl::InvalidArgumentError(
          absl::StrCat("ctxs[", i, "] needs a \"title\" and a \"text\""));
    }
    passages.push_back(
        absl::StrCat("Document (Title: ", PyStr(ctx["title"]), "): ", PyStr(ctx["text"])));
  }
  return absl::StrJoin(passages, "\n\n");
}

absl::Status Validate(const Json& record) {
  RETURN_IF_ERROR(GetString(record, "question").status());
  ASSIGN_OR_RETURN(std::vector<std::string> answers, GetStringList(record, "answers"));
  if (answers.empty()) return absl::InvalidArgumentError("field 'answers' is empty");
  return Passages(record).status();
}

// log10(s_pop) < threshold; a missing or non-numeric s_pop is a malformed PopQA record.
absl::StatusOr<bool> PopularEnough(const Json& record, double threshold) {
  ASSIGN_OR_RETURN(const Json* s_pop, GetField(record, "s_pop"));
  if (!s_pop->is_number()) return absl::InvalidArgumentError("field 's_pop' is not a number");
  return std::log10(s_pop->get<double>()) < threshold;
}

}  // namespace

absl::StatusOr<std::vector<Record>> LoadRag(const LoaderContext& context, LoadReport& report) {
  const bool popqa = context.config->name == "kilt_popqa";
  auto validate = [popqa](const Json& record) -> absl::Status {
    RETURN_IF_ERROR(Validate(record));
    if (popqa) RETURN_IF_ERROR(PopularEnough(record, 3).status());
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::vector<SourceRecord> data,
                   ReadAllRecords(context.test_path, context.strict, report, validate));
  LoadReport demo_report;
  std::vector<SourceRecord> demos;
  if (context.shots > 0) {
    ASSIGN_OR_RETURN(demos,
                     ReadAllRecords(context.demo_path, context.strict, demo_report, validate));
  }

  // PopQA keeps the less popular entities: log10(s_pop) < 3 (HELMET's kilt_popqa_3).
  if (popqa) {
    auto keep_popular = [&](std::vector<SourceRecord>& records, bool count) {
      std::vector<SourceRecord> kept;
      for (SourceRecord& record : records) {
        if (*PopularEnough(record.json, 3)) {
          kept.push_back(std::move(record));
        } else if (count) {
          ++report.filtered_out;
        }
      }
      records = std::move(kept);
    };
    keep_popular(data, true);
    keep_popular(demos, false);
  }
  if (data.empty()) return std::vector<Record>{};

  // Questions are keyed by "id" when the file has one, else by the question itself.
  const std::string key = data[0].json.contains("id") ? "id" : "question";
  std::vector<Json> keys;
  for (const SourceRecord& record : data) {
    auto it = record.json.find(key);
    if (it == record.json.end()) {
      return AtRecord(record,
                      absl::InvalidArgumentError(absl::StrCat("field '", key, "' is missing")));
    }
    keys.push_back(*it);
  }
  std::vector<size_t> chosen(data.size());
  for (size_t i = 0; i < chosen.size(); ++i) chosen[i] = i;
  if (context.max_samples > 0) {
    absl::StatusOr<std::vector<size_t>> sampled =
        SampleByKey(keys, context.seed, context.max_samples);
    // The keys are the whole file's: name it.
    if (!sampled.ok()) return Annotate(sampled.status(), context.test_path);
    chosen = *std::move(sampled);
  }

  std::vector<std::string> demo_keys;
  for (const SourceRecord& demo : demos) {
    auto it = demo.json.find(key);
    if (it == demo.json.end()) {
      return AtRecord(demo,
                      absl::InvalidArgumentError(absl::StrCat("field '", key, "' is missing")));
    }
    demo_keys.push_back(PyStr(*it));
  }

  std::vector<Record> examples;
  for (size_t index : chosen) {
    const SourceRecord& sample = data[index];
    const std::string sample_key = PyStr(keys[index]);
    std::string demo_text;
    if (context.shots > 0) {
      // PopQA's demos come from its own test set: leave the question itself out.
      std::vector<size_t> pool;
      std::vector<std::string> pool_keys;
      for (size_t d = 0; d < demos.size(); ++d) {
        if (popqa && demo_keys[d] == sample_key) continue;
        pool.push_back(d);
        pool_keys.push_back(demo_keys[d]);
      }
      // The same demos for the same question: the shuffle is seeded by the key's SHA-256.
      absl::StatusOr<std::vector<size_t>> picked =
          ShuffledDistinct(pool_keys, Sha256Mod2To31(sample_key), context.shots);
      if (!picked.ok()) return AtRecord(sample, picked.status());
      std::vector<std::string> blocks;
      for (size_t p : *picked) {
        const Json& demo = demos[pool[p]].json;
        ASSIGN_OR_RETURN(std::string documents, Passages(demo));
        blocks.push_back(absl::StrCat(documents, "\n\nQuestion: ", PyStr(demo["question"]),
                                      "\nAnswer: ", PyStr(demo["answers"][0])));
      }
      demo_text = absl::StrCat(absl::StrJoin(blocks, "\n\n"), "\n\n");
    }
    Record example = sample.json;
    example["demos"] = std::move(demo_text);
    ASSIGN_OR_RETURN(example["context"], Passages(sample.json));
    example["answer"] = sample.json["answers"];
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace prolong::evaluator::tasks::internal
