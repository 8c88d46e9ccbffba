// HELMET's load_msmarco_rerank: MS MARCO passages to rank by relevance to a query.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/records.h"

namespace prolong::evaluator::tasks::internal {
namespace {

absl::Status Validate(const Json& record) {
  RETURN_IF_ERROR(GetString(record, "qid").status());
  RETURN_IF_ERROR(GetString(record, "query").status());
  ASSIGN_OR_RETURN(const Json* ctxs, GetField(record, "ctxs"));
  if (!ctxs->is_array() || ctxs->empty()) {
    return absl::InvalidArgumentError("field 'ctxs' is not a non-empty list");
  }
  for (size_t i = 0; i < ctxs->size(); ++i) {
    const Json& ctx = (*ctxs)[i];
    if (!ctx.is_object() || !ctx.contains("id") || !ctx["id"].is_string() ||
        !ctx.contains("text") || !ctx.contains("label") || !ctx["label"].is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ctxs[", i, "] needs a string \"id\", a \"text\" and an integer \"label\""));
    }
  }
  return absl::OkStatus();
}

// "[ID: {id}] Document (Title: {title}): {text}", or without the title when the example's
// first passage has none (HELMET decides once per example, for its demos too).
absl::StatusOr<std::string> Passages(const Json& ctxs, bool with_title) {
  std::vector<std::string> passages;
  for (const Json& ctx : ctxs) {
    if (with_title && !ctx.contains("title")) {
      return absl::InvalidArgumentError("a passage has no \"title\" while the example's have");
    }
    passages.push_back(
        with_title
            ? absl::StrCat("[ID: ", PyStr(ctx["id"]), "] Document (Title: ", PyStr(ctx["title"]),
                           "): ", PyStr(ctx["text"]))
            : absl::StrCat("[ID: ", PyStr(ctx["id"]), "] Document: ", PyStr(ctx["text"])));
  }
  return absl::StrJoin(passages, "\n\n");
}

// The ids by label, highest first; ties keep the file's order (Python's sort is stable).
std::string GoldRanking(const Json& ctxs) {
  std::vector<const Json*> sorted;
  for (const Json& ctx : ctxs) sorted.push_back(&ctx);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Json* a, const Json* b) {
    return (*a)["label"].get<int64_t>() > (*b)["label"].get<int64_t>();
  });
  std::vector<std::string> ids;
  for (const Json* ctx : sorted) ids.push_back((*ctx)["id"].get<std::string>());
  return absl::StrJoin(ids, " > ");
}

}  // namespace

absl::StatusOr<std::vector<Record>> LoadRerank(const LoaderContext& context, LoadReport& report) {
  ASSIGN_OR_RETURN(std::vector<SourceRecord> data,
                   ReadAllRecords(context.test_path, context.strict, report, Validate));
  LoadReport demo_report;
  std::vector<SourceRecord> demos;
  if (!context.demo_path.empty()) {
    ASSIGN_OR_RETURN(demos,
                     ReadAllRecords(context.demo_path, context.strict, demo_report, Validate));
  }
  if (data.empty()) return std::vector<Record>{};

  std::vector<Json> keys;
  for (const SourceRecord& record : data) keys.push_back(record.json["qid"]);
  std::vector<size_t> chosen(data.size());
  for (size_t i = 0; i < chosen.size(); ++i) chosen[i] = i;
  if (context.max_samples > 0) {
    ASSIGN_OR_RETURN(chosen, SampleByKey(keys, context.seed, context.max_samples));
  }

  // The cut-offs of the retrieval metrics (HELMET's k_values): those the passages allow.
  Json k_values = Json::array();
  for (int k : {1, 5, 10, 20, 50, 100, 200, 500, 1000}) {
    if (static_cast<size_t>(k) <= data[chosen.empty() ? 0 : chosen[0]].json["ctxs"].size()) {
      k_values.push_back(k);
    }
  }

  // With more than twice as many demos as questions, demos of the sampled questions go first.
  bool demos_filtered = false;
  if (demos.size() > 2 * chosen.size()) {
    absl::flat_hash_set<std::string> qids;
    for (size_t index : chosen) qids.insert(keys[index].get<std::string>());
    std::vector<SourceRecord> kept;
    for (SourceRecord& demo : demos) {
      if (!qids.contains(demo.json["qid"].get<std::string>())) kept.push_back(std::move(demo));
    }
    demos = std::move(kept);
    demos_filtered = true;
  }

  std::vector<Record> examples;
  for (size_t index : chosen) {
    const SourceRecord& sample = data[index];
    const Json& ctxs = sample.json["ctxs"];
    const std::string qid = sample.json["qid"].get<std::string>();
    const bool with_title = ctxs[0].contains("title");
    absl::StatusOr<std::string> passages = Passages(ctxs, with_title);
    if (!passages.ok()) return AtRecord(sample, passages.status());

    std::string demo_text;
    if (context.shots > 0) {
      std::vector<size_t> pool;
      std::vector<std::string> pool_keys;
      for (size_t d = 0; d < demos.size(); ++d) {
        const std::string demo_qid = demos[d].json["qid"].get<std::string>();
        if (!demos_filtered && demo_qid == qid) continue;
        pool.push_back(d);
        pool_keys.push_back(demo_qid);
      }
      absl::StatusOr<std::vector<size_t>> picked =
          ShuffledDistinct(pool_keys, Sha256Mod2To31(qid), context.shots);
      if (!picked.ok()) return AtRecord(sample, picked.status());
      for (size_t p : *picked) {
        const SourceRecord& demo = demos[pool[p]];
        absl::StatusOr<std::string> demo_passages = Passages(demo.json["ctxs"], with_title);
        if (!demo_passages.ok()) return AtRecord(demo, demo_passages.status());
        absl::StrAppend(&demo_text, *demo_passages, "\n\nQuery: ", PyStr(demo.json["query"]),
                        "\nRanking: ", GoldRanking(demo.json["ctxs"]), "\n\n");
      }
    }

    // HELMET drops "query" and "ctxs" and adds what the prompt and the metrics read.
    Record example;
    for (auto it = sample.json.begin(); it != sample.json.end(); ++it) {
      if (it.key() != "query" && it.key() != "ctxs") example[it.key()] = it.value();
    }
    example["context"] = *std::move(passages);
    example["question"] = sample.json["query"];
    example["demos"] = std::move(demo_text);
    example["answer"] = GoldRanking(ctxs);
    Json qrel = Json::array();
    for (const Json& ctx : ctxs) {
      qrel.push_back(Json::array({ctx["id"], std::to_string(ctx["label"].get<int64_t>())}));
    }
    example["qrel"] = std::move(qrel);
    example["k_values"] = k_values;
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace prolong::evaluator::tasks::internal
