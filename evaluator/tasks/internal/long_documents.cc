// HELMET's long-document loaders: load_narrativeqa, load_infbench (QA, multiple choice,
// summary) and load_multi_lexsum. Their documents are long (NarrativeQA's test split repeats a
// whole book for each of its questions), so records are kept without their text and the text
// is read again, by file offset, for the examples that need it.
#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/numpy_random.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/records.h"
#include "evaluator/tasks/internal/reference_length.h"

namespace prolong::evaluator::tasks::internal {
namespace {

// A record without its long text, which `Text` reads back.
struct Light {
  SourceRecord source;  // JSON without the long field(s) when offset >= 0.
  std::string text;     // The long text itself when it cannot be read back (a .json file).
};

using TextOf = std::function<absl::StatusOr<std::string>(const Json&)>;
using Strip = std::function<void(Json&)>;

absl::StatusOr<std::vector<Light>> ReadLight(const std::string& path, bool strict,
                                             LoadReport& report,
                                             const std::function<absl::Status(const Json&)>& check,
                                             const TextOf& text_of, const Strip& strip) {
  std::vector<Light> out;
  absl::Status status = ReadRecords(path, ReadOptions{strict}, report, [&](SourceRecord& record) {
    RETURN_IF_ERROR(check(record.json));
    Light light;
    if (record.offset < 0) {
      ASSIGN_OR_RETURN(light.text, text_of(record.json));
    }
    strip(record.json);
    light.source = std::move(record);
    out.push_back(std::move(light));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<std::string> Text(const std::string& path, const Light& light,
                                 const TextOf& text_of) {
  if (light.source.offset < 0) return light.text;
  ASSIGN_OR_RETURN(Json full, ReadRecordAt(path, light.source.offset));
  return text_of(full);
}

const tokenizer::Tokenizer& Reference(const LoaderContext& context) {
  return *context.reference_tokenizer;
}

// The indices that survive HELMET's length filter (in order), reading each text once.
absl::StatusOr<std::vector<size_t>> LongEnough(const LoaderContext& context,
                                               const std::vector<Light>& records,
                                               const TextOf& text_of, LoadReport& report) {
  std::vector<size_t> kept;
  for (size_t i = 0; i < records.size(); ++i) {
    ASSIGN_OR_RETURN(std::string text, Text(context.test_path, records[i], text_of));
    if (HasAtLeastTokens(Reference(context), text, context.config->min_context_tokens)) {
      kept.push_back(i);
    } else {
      ++report.filtered_out;
    }
  }
  return kept;
}

// Demos drawn for one example: the first `shots` of a numpy permutation of `pool_size`.
std::vector<size_t> DrawDemos(uint64_t seed, size_t pool_size, int shots) {
  std::vector<size_t> permutation = NumpyPermutation(seed, pool_size);
  permutation.resize(std::min<size_t>(permutation.size(), std::max(shots, 0)));
  return permutation;
}

// ---- NarrativeQA -------------------------------------------------------------------------

absl::StatusOr<std::string> NarrativeDocument(const Json& record) {
  ASSIGN_OR_RETURN(const Json* document, GetField(record, "document"));
  if (!document->is_object())
    return absl::InvalidArgumentError("field 'document' is not an object");
  return GetString(*document, "text");
}

absl::StatusOr<std::string> NarrativeQuestion(const Json& record) {
  ASSIGN_OR_RETURN(const Json* question, GetField(record, "question"));
  if (!question->is_object())
    return absl::InvalidArgumentError("field 'question' is not an object");
  return GetString(*question, "text");
}

absl::StatusOr<std::vector<std::string>> NarrativeAnswers(const Json& record) {
  ASSIGN_OR_RETURN(const Json* answers, GetField(record, "answers"));
  if (!answers->is_array() || answers->empty()) {
    return absl::InvalidArgumentError("field 'answers' is not a non-empty list");
  }
  std::vector<std::string> out;
  for (const Json& answer : *answers) {
    if (!answer.is_object()) return absl::InvalidArgumentError("an answer is not an object");
    ASSIGN_OR_RETURN(std::string text, GetString(answer, "text"));
    out.push_back(std::move(text));
  }
  return out;
}

absl::Status CheckNarrative(const Json& record) {
  RETURN_IF_ERROR(NarrativeDocument(record).status());
  RETURN_IF_ERROR(NarrativeQuestion(record).status());
  return NarrativeAnswers(record).status();
}

void DropDocumentText(Json& record) {
  if (record.contains("document") && record["document"].is_object()) {
    record["document"].erase("text");
  }
}

// ---- InfiniteBench -----------------------------------------------------------------------

absl::StatusOr<std::string> InfBenchContext(const Json& record) {
  return GetString(record, "context");
}

}  // namespace

absl::StatusOr<std::vector<Record>> LoadNarrativeQa(const LoaderContext& context,
                                                    LoadReport& report) {
  ASSIGN_OR_RETURN(std::vector<Light> test,
                   ReadLight(context.test_path, context.strict, report, CheckNarrative,
                             NarrativeDocument, DropDocumentText));
  // Demos need only the training questions and their first answers.
  std::vector<std::pair<std::string, std::string>> train;
  if (context.shots > 0) {
    LoadReport train_report;
    RETURN_IF_ERROR(ReadRecords(
        context.demo_path, ReadOptions{context.strict}, train_report,
        [&](SourceRecord& record) -> absl::Status {
          ASSIGN_OR_RETURN(std::string question, NarrativeQuestion(record.json));
          ASSIGN_OR_RETURN(std::vector<std::string> answers, NarrativeAnswers(record.json));
          train.emplace_back(std::move(question), std::move(answers[0]));
          return absl::OkStatus();
        }));
    if (train.size() < static_cast<size_t>(context.shots)) {
      return absl::FailedPreconditionError(absl::StrCat(context.demo_path, ": ", train.size(),
                                                        " training questions for ", context.shots,
                                                        " demos"));
    }
  }

  // HELMET shuffles the test split first, then keeps the documents over the length in that
  // order, then the first max_samples. A book is counted once for all its questions.
  absl::flat_hash_map<std::string, bool> long_enough;
  std::vector<Record> examples;
  for (size_t index : NumpyPermutation(context.seed, test.size())) {
    if (context.max_samples > 0 && examples.size() >= static_cast<size_t>(context.max_samples)) {
      break;
    }
    const Light& light = test[index];
    ASSIGN_OR_RETURN(std::string document, Text(context.test_path, light, NarrativeDocument));
    const Json& stored = light.source.json;
    std::string book = stored["document"].contains("id")
                           ? PyStr(stored["document"]["id"])
                           : absl::StrCat(document.size(), ":", Sha256Mod2To31(document));
    auto [it, fresh] = long_enough.try_emplace(book, false);
    if (fresh) {
      it->second =
          HasAtLeastTokens(Reference(context), document, context.config->min_context_tokens);
    }
    if (!it->second) {
      ++report.filtered_out;
      continue;
    }
    const std::string question = *NarrativeQuestion(stored);
    std::string demo;
    if (context.shots > 0) {
      // HELMET draws these unseeded; ours are fixed by the question and the seed.
      std::vector<std::string> blocks;
      for (size_t d :
           DrawDemos(Sha256PlusSeedMod2To31(question, context.seed), train.size(), context.shots)) {
        blocks.push_back(absl::StrCat("Question: ", train[d].first, "\nAnswer: ", train[d].second));
      }
      demo = absl::StrCat("For example:\n\n", absl::StrJoin(blocks, "\n\n"),
                          "\n\nNow, use the following story to answer the question:\n\n");
    }
    Record example;
    example["question"] = question;
    example["answer"] = *NarrativeAnswers(stored);
    example["demo"] = std::move(demo);
    ASSIGN_OR_RETURN(example["context"], TruncateToTokens(Reference(context), document,
                                                          context.config->context_token_limit));
    examples.push_back(std::move(example));
  }
  return examples;
}

absl::StatusOr<std::vector<Record>> LoadInfBench(const LoaderContext& context, LoadReport& report) {
  const TaskKind kind = context.config->kind;
  auto check = [kind](const Json& record) -> absl::Status {
    RETURN_IF_ERROR(GetInt(record, "id").status());
    RETURN_IF_ERROR(GetString(record, "context").status());
    RETURN_IF_ERROR(GetString(record, "input").status());
    ASSIGN_OR_RETURN(std::vector<std::string> answer, GetStringList(record, "answer"));
    if (answer.empty()) return absl::InvalidArgumentError("field 'answer' is empty");
    if (kind == TaskKind::kInfBenchChoice) {
      ASSIGN_OR_RETURN(std::vector<std::string> options, GetStringList(record, "options"));
      if (options.size() < 4) {
        return absl::InvalidArgumentError("field 'options' has fewer than 4 options");
      }
      if (std::find(options.begin(), options.end(), answer[0]) == options.end()) {
        return absl::InvalidArgumentError("the answer is not one of the options");
      }
    }
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(std::vector<Light> data,
                   ReadLight(context.test_path, context.strict, report, check, InfBenchContext,
                             [](Json& record) { record.erase("context"); }));

  // process_example: the question is the input; multiple choice gets lettered options and the
  // answer as [letter, "letter. option"].
  for (Light& light : data) {
    Json& record = light.source.json;
    record["question"] = record["input"];
    record["demo"] = "";
    if (kind == TaskKind::kInfBenchChoice) {
      const std::vector<std::string> options = *GetStringList(record, "options");
      const std::string answer = record["answer"][0].get<std::string>();
      const std::string letter(
          1, static_cast<char>(
                 'A' + (std::find(options.begin(), options.end(), answer) - options.begin())));
      record["options"] = absl::StrCat("A. ", options[0], "\nB. ", options[1], "\nC. ", options[2],
                                       "\nD. ", options[3]);
      record["answer"] = Json::array({letter, absl::StrCat(letter, ". ", answer)});
    }
  }

  // add_demos: the other examples, shuffled with the run's seed, the first `shots` of them.
  if (context.shots > 0) {
    if (data.size() <= static_cast<size_t>(context.shots)) {
      return absl::FailedPreconditionError(absl::StrCat(context.test_path, ": ", data.size(),
                                                        " examples cannot give each other ",
                                                        context.shots, " demos"));
    }
    std::vector<std::string> demo_texts;
    for (size_t i = 0; i < data.size(); ++i) {
      std::vector<size_t> pool;
      const int64_t id = data[i].source.json["id"].get<int64_t>();
      for (size_t j = 0; j < data.size(); ++j) {
        if (data[j].source.json["id"].get<int64_t>() != id) pool.push_back(j);
      }
      std::vector<std::string> blocks;
      for (size_t p : DrawDemos(context.seed, pool.size(), context.shots)) {
        const Json& demo = data[pool[p]].source.json;
        const std::string first_answer = demo["answer"][0].get<std::string>();
        if (kind == TaskKind::kInfBenchQa) {
          blocks.push_back(absl::StrCat("[story text]\nQuestion: ", PyStr(demo["question"]),
                                        "\nAnswer: ", first_answer));
        } else if (kind == TaskKind::kInfBenchChoice) {
          blocks.push_back(absl::StrCat("[story text]\nQuestion: ", PyStr(demo["question"]),
                                        "\nOptions:\n", PyStr(demo["options"]),
                                        "\nAnswer: ", first_answer));
        } else {
          blocks.push_back(absl::StrCat("[story text]\nSummary: ", PyStrip(first_answer)));
        }
      }
      demo_texts.push_back(absl::StrCat("For example:\n\n", absl::StrJoin(blocks, "\n\n"),
                                        "\n\nNow, read the following story:\n\n"));
    }
    for (size_t i = 0; i < data.size(); ++i) data[i].source.json["demo"] = demo_texts[i];
  }

  ASSIGN_OR_RETURN(std::vector<size_t> kept, LongEnough(context, data, InfBenchContext, report));
  // With a sample limit HELMET always shuffles, then takes the first ones.
  if (context.max_samples > 0) {
    std::vector<size_t> shuffled;
    for (size_t index : NumpyPermutation(context.seed, kept.size())) {
      shuffled.push_back(kept[index]);
    }
    shuffled.resize(std::min(shuffled.size(), static_cast<size_t>(context.max_samples)));
    kept = std::move(shuffled);
  }
  std::vector<Record> examples;
  for (size_t index : kept) {
    Record example = data[index].source.json;
    ASSIGN_OR_RETURN(std::string text, Text(context.test_path, data[index], InfBenchContext));
    ASSIGN_OR_RETURN(example["context"], TruncateToTokens(Reference(context), text,
                                                          context.config->context_token_limit));
    examples.push_back(std::move(example));
  }
  return examples;
}

absl::StatusOr<std::vector<Record>> LoadMultiLexSum(const LoaderContext& context,
                                                    LoadReport& report) {
  auto check = [](const Json& record) -> absl::Status {
    RETURN_IF_ERROR(GetStringList(record, "sources").status());
    ASSIGN_OR_RETURN(const Json* summary, GetField(record, "summary/short"));
    if (!summary->is_null() && !summary->is_string()) {
      return absl::InvalidArgumentError("field 'summary/short' is neither a string nor null");
    }
    return absl::OkStatus();
  };
  TextOf sources = [](const Json& record) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(std::vector<std::string> parts, GetStringList(record, "sources"));
    return absl::StrJoin(parts, "\n\n");
  };
  ASSIGN_OR_RETURN(std::vector<Light> all,
                   ReadLight(context.test_path, context.strict, report, check, sources,
                             [](Json& record) { record.erase("sources"); }));
  // Cases without a short summary are left out of every split.
  std::vector<Light> data;
  for (Light& light : all) {
    if (light.source.json["summary/short"].is_null()) {
      ++report.filtered_out;
    } else {
      data.push_back(std::move(light));
    }
  }
  std::vector<std::string> train_summaries;
  if (context.shots > 0) {
    LoadReport train_report;
    RETURN_IF_ERROR(ReadRecords(context.demo_path, ReadOptions{context.strict}, train_report,
                                [&](SourceRecord& record) -> absl::Status {
                                  RETURN_IF_ERROR(check(record.json));
                                  const Json& summary = record.json["summary/short"];
                                  if (summary.is_string()) {
                                    train_summaries.push_back(summary.get<std::string>());
                                  }
                                  return absl::OkStatus();
                                }));
    if (train_summaries.size() < static_cast<size_t>(context.shots)) {
      return absl::FailedPreconditionError(absl::StrCat(context.demo_path, ": ",
                                                        train_summaries.size(), " summaries for ",
                                                        context.shots, " demos"));
    }
  }

  ASSIGN_OR_RETURN(std::vector<size_t> kept, LongEnough(context, data, sources, report));
  // Only more cases than wanted are shuffled (unlike InfiniteBench).
  if (context.max_samples > 0 && kept.size() > static_cast<size_t>(context.max_samples)) {
    std::vector<size_t> shuffled;
    for (size_t index : NumpyPermutation(context.seed, kept.size())) {
      shuffled.push_back(kept[index]);
    }
    shuffled.resize(context.max_samples);
    kept = std::move(shuffled);
  }
  std::vector<Record> examples;
  for (size_t index : kept) {
    const Light& light = data[index];
    Record example = light.source.json;
    std::string demo;
    if (context.shots > 0) {
      // HELMET draws these unseeded; ours are fixed by the case and the seed.
      const std::string id = example.contains("id") ? PyStr(example["id"]) : light.source.where;
      std::vector<std::string> blocks;
      for (size_t d : DrawDemos(Sha256PlusSeedMod2To31(id, context.seed), train_summaries.size(),
                                context.shots)) {
        blocks.push_back(absl::StrCat("Summary: ", train_summaries[d]));
      }
      demo = absl::StrCat("Example summaries:\n\n", absl::StrJoin(blocks, "\n\n"),
                          "\n\nNow, write a summary of the following legal documents.\n");
    }
    ASSIGN_OR_RETURN(std::string text, Text(context.test_path, light, sources));
    ASSIGN_OR_RETURN(example["context"], TruncateToTokens(Reference(context), text,
                                                          context.config->context_token_limit));
    example["demo"] = std::move(demo);
    example["answer"] = example["summary/short"];
    example["question"] = "";
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace prolong::evaluator::tasks::internal
