// Follows HELMET's data.py (load_data and the loaders' post_process), eval.py (output names)
// and scripts/collect_results.py (dataset_to_metrics, custom_avgs) at commit 4526dfb.
#include "evaluator/metrics/dataset.h"

#include <charconv>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace prolong::evaluator::metrics {
namespace {

bool ContainsAny(absl::string_view name, std::initializer_list<absl::string_view> parts) {
  for (absl::string_view part : parts) {
    if (absl::StrContains(name, part)) return true;
  }
  return false;
}

// collect_results.py's dataset_to_metrics: the first key (in its order) contained in the
// name decides.
struct ReportedMetric {
  absl::string_view key;
  absl::string_view metric;
};
constexpr ReportedMetric kCollectedMetrics[] = {
    {"json_kv", "substring_exact_match"},
    {"nq", "substring_exact_match"},
    {"popqa", "substring_exact_match"},
    {"triviaqa", "substring_exact_match"},
    {"hotpotqa", "substring_exact_match"},
    {"narrativeqa", "gpt-4-score"},
    {"msmarco_rerank_psg", "NDCG@10"},
    {"trec_coarse", "exact_match"},
    {"trec_fine", "exact_match"},
    {"banking77", "exact_match"},
    {"clinic150", "exact_match"},
    {"nlu", "exact_match"},
    {"qmsum", "rougeL_recall"},
    {"multi_lexsum", "gpt-4-f1"},
    {"ruler_niah_s_1", "ruler_recall"},
    {"ruler_niah_s_2", "ruler_recall"},
    {"ruler_niah_s_3", "ruler_recall"},
    {"ruler_niah_mk_1", "ruler_recall"},
    {"ruler_niah_mk_2", "ruler_recall"},
    {"ruler_niah_mk_3", "ruler_recall"},
    {"ruler_niah_mq", "ruler_recall"},
    {"ruler_niah_mv", "ruler_recall"},
    {"ruler_fwe", "ruler_recall"},
    {"ruler_cwe", "ruler_recall"},
    {"ruler_vt", "ruler_recall"},
    {"ruler_qa_1", "substring_exact_match"},
    {"ruler_qa_2", "substring_exact_match"},
    {"infbench_qa", "rougeL_f1"},
    {"infbench_choice", "exact_match"},
    {"infbench_sum", "gpt-4-f1"},
};

// The metric a scoring computes that collect_results.py would report when its name is not in
// dataset_to_metrics.
absl::string_view DefaultMetric(Scoring scoring) {
  switch (scoring) {
    case Scoring::kRulerRecall:
      return "ruler_recall";
    case Scoring::kRerank:
      return "NDCG@10";
    case Scoring::kIcl:
    case Scoring::kChoice:
      return "exact_match";
    case Scoring::kSummary:
      return "rougeLsum_f1";
    case Scoring::kQa:
    case Scoring::kJsonKv:
      return "substring_exact_match";
  }
  return "substring_exact_match";
}

constexpr absl::string_view kKnownFamilies =
    "kilt_nq, kilt_triviaqa, kilt_hotpotqa, kilt_popqa_N, json_kv, narrativeqa_N, "
    "msmarco_rerank_psg, icl_<name>_Nshot[_balance], multi_lexsum_N, ruler_<task>, "
    "infbench_qa_eng_N, infbench_choice_eng_N, infbench_sum_eng_N";

bool IsNumber(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Python's repr of a float: the shortest digits that read back, in fixed notation from 1e-4
// up to 1e16 (with ".0" for whole numbers), otherwise as "1e-05" or "1e+16".
std::string PythonFloatRepr(double value) {
  char buffer[64];
  auto [end, error] =
      std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string scientific(buffer, end);
  if (error != std::errc() || !absl::StrContains(scientific, 'e')) return scientific;
  const size_t e = scientific.find('e');
  const int exponent = std::stoi(scientific.substr(e + 1));
  std::string mantissa = scientific.substr(0, e);
  const bool negative = !mantissa.empty() && mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    return absl::StrCat(out, absl::StrFormat("e%c%02d", exponent < 0 ? '-' : '+',
                                             exponent < 0 ? -exponent : exponent));
  }
  if (exponent < 0) {
    return absl::StrCat(out, "0.", std::string(-exponent - 1, '0'), digits);
  }
  const size_t integer_digits = exponent + 1;
  if (digits.size() <= integer_digits) {
    return absl::StrCat(out, digits, std::string(integer_digits - digits.size(), '0'), ".0");
  }
  return absl::StrCat(out, digits.substr(0, integer_digits), ".", digits.substr(integer_digits));
}

absl::string_view PythonBool(bool value) { return value ? "True" : "False"; }

}  // namespace

absl::StatusOr<DatasetSpec> LookupDataset(absl::string_view name) {
  DatasetSpec spec;
  spec.name = std::string(name);
  // load_data's dispatch, in its order.
  if (ContainsAny(name, {"popqa", "nq", "hotpotqa", "triviaqa"})) {
    spec.category = Category::kRag;
    spec.scoring = Scoring::kQa;
  } else if (name == "json_kv") {
    spec.category = Category::kRecall;
    spec.scoring = Scoring::kJsonKv;
  } else if (absl::StrContains(name, "narrativeqa")) {
    spec.category = Category::kLongQa;
    spec.scoring = Scoring::kQa;
  } else if (absl::StrContains(name, "msmarco")) {
    spec.category = Category::kRerank;
    spec.scoring = Scoring::kRerank;
  } else if (absl::StrContains(name, "alce")) {
    return absl::UnimplementedError(absl::StrCat(
        "dataset '", name, "': ALCE (cite) is scored by HELMET's eval_alce.py with an NLI model"));
  } else if (absl::StrContains(name, "icl")) {
    spec.category = Category::kIcl;
    spec.scoring = Scoring::kIcl;
  } else if (absl::StrContains(name, "multi_lexsum")) {
    spec.category = Category::kSumm;
    spec.scoring = Scoring::kSummary;
  } else if (absl::StrContains(name, "ruler")) {
    // RULER's QA tasks use the default scoring; the others count gold values found.
    spec.scoring = absl::StrContains(name, "qa") ? Scoring::kQa : Scoring::kRulerRecall;
    spec.category = ContainsAny(name, {"niah_mk_2", "niah_mk_3", "niah_mv"}) ? Category::kRecall
                                                                             : Category::kRuler;
  } else if (absl::StrContains(name, "infbench")) {
    if (absl::StrContains(name, "choice_eng")) {
      spec.category = Category::kLongQa;
      spec.scoring = Scoring::kChoice;
    } else if (absl::StrContains(name, "sum_eng")) {
      spec.category = Category::kSumm;
      spec.scoring = Scoring::kQa;
    } else if (absl::StrContains(name, "qa_eng")) {
      spec.category = Category::kLongQa;
      spec.scoring = Scoring::kQa;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("dataset '", name,
                       "': InfiniteBench datasets are infbench_qa_eng_N, "
                       "infbench_choice_eng_N and infbench_sum_eng_N"));
    }
  } else if (ContainsAny(name, {"html_to_tsv", "pseudo_to_code", "path_traversal", "tom_tracking",
                                "countdown", "travel_planning"})) {
    return absl::UnimplementedError(
        absl::StrCat("dataset '", name, "': LongProc tasks are scored by HELMET's longproc_addon"));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown dataset '", name, "'; HELMET's are ", kKnownFamilies));
  }

  spec.primary_metric = std::string(DefaultMetric(spec.scoring));
  for (const ReportedMetric& reported : kCollectedMetrics) {
    if (absl::StrContains(name, reported.key)) {
      spec.primary_metric = std::string(reported.metric);
      break;
    }
  }
  spec.judged = absl::StartsWith(spec.primary_metric, "gpt-4");
  spec.reported_metric = spec.primary_metric;
  if (spec.judged) {
    spec.reported_metric = spec.category == Category::kSumm ? "rougeLsum_f1" : "rougeL_f1";
  }
  return spec;
}

bool IsHelmetDatasetName(absl::string_view name) {
  for (absl::string_view exact :
       {"json_kv", "msmarco_rerank_psg", "kilt_nq", "kilt_triviaqa", "kilt_hotpotqa",
        "ruler_niah_s_1", "ruler_niah_s_2", "ruler_niah_s_3", "ruler_niah_mk_1", "ruler_niah_mk_2",
        "ruler_niah_mk_3", "ruler_niah_mq", "ruler_niah_mv", "ruler_cwe", "ruler_fwe", "ruler_vt",
        "ruler_qa_1", "ruler_qa_2"}) {
    if (name == exact) return true;
  }
  // A family followed by a number: an input length, or PopQA's popularity threshold.
  for (absl::string_view family :
       {"kilt_popqa_", "narrativeqa_", "infbench_qa_eng_", "infbench_choice_eng_",
        "infbench_sum_eng_", "multi_lexsum_", "alce_asqa_", "alce_qampari_"}) {
    if (absl::StartsWith(name, family) && IsNumber(name.substr(family.size()))) return true;
  }
  // icl_<task>_<N>shot, then optional _balance / _natural_label.
  for (absl::string_view task : {"trec_coarse", "trec_fine", "banking77", "clinic150", "nlu"}) {
    const std::string prefix = absl::StrCat("icl_", task, "_");
    if (!absl::StartsWith(name, prefix)) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(name.substr(prefix.size()), '_');
    if (parts.empty() || !absl::ConsumeSuffix(&parts[0], "shot") || !IsNumber(parts[0])) {
      return false;
    }
    const std::string rest = absl::StrJoin(parts.begin() + 1, parts.end(), "_");
    return rest.empty() || rest == "balance" || rest == "natural_label" ||
           rest == "balance_natural_label" || rest == "natural_label_balance";
  }
  return false;
}

std::optional<std::string> DatasetFromOutputName(absl::string_view path) {
  absl::string_view name = path;
  if (const size_t slash = name.rfind('/'); slash != absl::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  absl::ConsumeSuffix(&name, ".score");
  absl::ConsumeSuffix(&name, ".json");
  // Everything from the last "_in<digits>_size" on is generation settings.
  for (size_t pos = name.rfind("_in"); pos != absl::string_view::npos;
       pos = pos == 0 ? absl::string_view::npos : name.rfind("_in", pos - 1)) {
    size_t digits_end = pos + 3;
    while (digits_end < name.size() && absl::ascii_isdigit(name[digits_end])) ++digits_end;
    if (digits_end > pos + 3 && absl::StartsWith(name.substr(digits_end), "_size")) {
      name = name.substr(0, pos);
      break;
    }
  }
  // The longest leading part, cut at an underscore, that is a dataset name.
  for (size_t end = name.size(); end > 0; --end) {
    if (end < name.size() && name[end] != '_') continue;
    if (IsHelmetDatasetName(name.substr(0, end))) return std::string(name.substr(0, end));
  }
  return std::nullopt;
}

std::string OutputFileName(const OutputNameSettings& s) {
  std::string tag = s.tag;
  if (s.dataset == "popqa") absl::StrAppend(&tag, "_pop", s.popularity_threshold);
  return absl::StrCat(s.dataset, "_", tag, "_", s.test_name, "_in", s.input_max_length, "_size",
                      s.max_test_samples.has_value() ? std::to_string(*s.max_test_samples) : "None",
                      "_shots", s.shots, "_samp", PythonBool(s.do_sample), "max",
                      s.generation_max_length, "min", s.generation_min_length, "t",
                      PythonFloatRepr(s.temperature), "p", PythonFloatRepr(s.top_p), "_chat",
                      PythonBool(s.use_chat_template), "_", s.seed, ".json");
}

}  // namespace prolong::evaluator::metrics
