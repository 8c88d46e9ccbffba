// parse_rankings follows HELMET's utils.py; the measures follow trec_eval 9.0.8
// (usnistgov/trec_eval at the commit pytrec_eval builds: form_res_rels.c, m_ndcg_cut.c,
// m_map_cut.c, m_recall.c, m_P.c, m_recip_rank.c) loop for loop, so that sums are taken in the
// same order and give the same doubles.
#include "evaluator/metrics/retrieval.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "evaluator/metrics/average.h"
#include "evaluator/metrics/internal/python_text.h"

namespace prolong::evaluator::metrics {
namespace {

using internal::IsPythonDecimal;
using internal::IsPythonSpace;

// trec_eval's relevance for a retrieved document that no qrel judges.
constexpr int kNotJudged = -1;
// pytrec_eval's default relevance_level: labels from 1 up are relevant for binary measures.
constexpr int kRelevanceLevel = 1;

struct Match {
  size_t begin = 0;
  size_t end = 0;
};

// At `pos` (a digit): the extent of (\d+)(?:\s*>\s*(\d+))* as Python's re matches it. The
// greedy group gives back a partial "> ..." that is not followed by digits.
size_t MatchChain(const std::u32string& text, size_t pos) {
  size_t i = pos;
  while (i < text.size() && IsPythonDecimal(text[i])) ++i;
  for (;;) {
    size_t j = i;
    while (j < text.size() && IsPythonSpace(text[j])) ++j;
    if (j >= text.size() || text[j] != '>') return i;
    ++j;
    while (j < text.size() && IsPythonSpace(text[j])) ++j;
    if (j >= text.size() || !IsPythonDecimal(text[j])) return i;
    while (j < text.size() && IsPythonDecimal(text[j])) ++j;
    i = j;
  }
}

// Relevance of each retrieved document in rank order, and the judged documents per level.
struct ResultRelevance {
  std::vector<int> ranked;   // kNotJudged for documents without a qrel
  std::vector<long> levels;  // levels[l]: judged documents with label l
  long relevant = 0;         // judged documents with label >= kRelevanceLevel
  int num_levels = 0;        // highest label with a document, plus one
};

ResultRelevance FormResultRelevance(const Ranking& ranking,
                                    const std::map<std::string, int>& judged) {
  // trec_eval sorts by score, higher first, ties broken by the greater document id.
  std::vector<std::pair<std::string, int>> sorted = ranking;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return a.first > b.first;
  });
  ResultRelevance result;
  for (const auto& [doc_id, score] : sorted) {
    auto it = judged.find(doc_id);
    result.ranked.push_back(it == judged.end() ? kNotJudged : it->second);
  }
  int max_label = 0;
  for (const auto& [doc_id, label] : judged) max_label = std::max(max_label, label);
  result.levels.assign(max_label + 1, 0);
  for (const auto& [doc_id, label] : judged) ++result.levels[label];
  for (int level = 0; level <= max_label; ++level) {
    if (result.levels[level] == 0) continue;
    result.num_levels = level + 1;
    if (level >= kRelevanceLevel) result.relevant += result.levels[level];
  }
  return result;
}

std::vector<double> NdcgAt(const ResultRelevance& rel, const std::vector<int>& cutoffs) {
  std::vector<double> values(cutoffs.size(), 0.0);
  size_t cut = 0;
  double sum = 0.0;
  for (size_t i = 0; i < rel.ranked.size(); ++i) {
    if (static_cast<long>(i) == cutoffs[cut]) {
      values[cut] = sum;
      if (++cut == cutoffs.size()) break;
    }
    const double gain = rel.ranked[i];
    if (gain > 0) sum += gain / std::log2(static_cast<double>(i + 2));
  }
  for (; cut < cutoffs.size(); ++cut) values[cut] = sum;

  // The ideal ranking: judged documents from the highest label down.
  cut = 0;
  long level = rel.num_levels - 1;
  long count = 0;
  double ideal = 0.0;
  for (long i = 0;; ++i) {
    ++count;
    while (level > 0 && count > rel.levels[level]) {
      --level;
      count = 1;
    }
    if (level == 0) break;
    if (i == cutoffs[cut]) {
      if (ideal > 0.0) values[cut] /= ideal;
      if (++cut == cutoffs.size()) break;
    }
    const double gain = level;
    ideal += gain / std::log2(static_cast<double>(i + 2));
  }
  for (; cut < cutoffs.size(); ++cut) {
    if (ideal > 0.0) values[cut] /= ideal;
  }
  return values;
}

std::vector<double> MapAt(const ResultRelevance& rel, const std::vector<int>& cutoffs) {
  std::vector<double> values(cutoffs.size(), 0.0);
  if (rel.relevant == 0) return values;
  size_t cut = 0;
  long so_far = 0;
  double sum = 0.0;
  for (size_t i = 0; i < rel.ranked.size(); ++i) {
    if (static_cast<long>(i) == cutoffs[cut]) {
      values[cut] = sum / static_cast<double>(rel.relevant);
      if (++cut == cutoffs.size()) break;
    }
    if (rel.ranked[i] >= kRelevanceLevel) {
      ++so_far;
      sum += static_cast<double>(so_far) / static_cast<double>(i + 1);
    }
  }
  for (; cut < cutoffs.size(); ++cut) values[cut] = sum / static_cast<double>(rel.relevant);
  return values;
}

std::vector<double> RecallAt(const ResultRelevance& rel, const std::vector<int>& cutoffs) {
  std::vector<double> values(cutoffs.size(), 0.0);
  if (rel.relevant == 0) return values;
  size_t cut = 0;
  long so_far = 0;
  for (size_t i = 0; i < rel.ranked.size(); ++i) {
    if (static_cast<long>(i) == cutoffs[cut]) {
      values[cut] = static_cast<double>(so_far) / static_cast<double>(rel.relevant);
      if (++cut == cutoffs.size()) break;
    }
    if (rel.ranked[i] >= kRelevanceLevel) ++so_far;
  }
  for (; cut < cutoffs.size(); ++cut) {
    values[cut] = static_cast<double>(so_far) / static_cast<double>(rel.relevant);
  }
  return values;
}

std::vector<double> PrecisionAt(const ResultRelevance& rel, const std::vector<int>& cutoffs) {
  std::vector<double> values(cutoffs.size(), 0.0);
  size_t cut = 0;
  long so_far = 0;
  for (size_t i = 0; i < rel.ranked.size(); ++i) {
    if (static_cast<long>(i) == cutoffs[cut]) {
      values[cut] = static_cast<double>(so_far) / static_cast<double>(i);
      if (++cut == cutoffs.size()) break;
    }
    if (rel.ranked[i] >= kRelevanceLevel) ++so_far;
  }
  // Missing documents count as non-relevant ones.
  for (; cut < cutoffs.size(); ++cut) {
    values[cut] = static_cast<double>(so_far) / static_cast<double>(cutoffs[cut]);
  }
  return values;
}

double ReciprocalRank(const ResultRelevance& rel) {
  for (size_t i = 0; i < rel.ranked.size(); ++i) {
    if (rel.ranked[i] >= kRelevanceLevel) return 1.0 / static_cast<double>(i + 1);
  }
  return 0.0;
}

}  // namespace

Ranking ParseRankings(absl::string_view output) {
  std::string kept;
  for (char c : output) {
    if (c != '[' && c != ']' && c != ':') kept.push_back(c);
  }
  const std::u32string text = internal::PythonLower(internal::DecodeUtf8(kept));
  // str.replace("id", ""): one pass, so "iidd" leaves "id".
  std::u32string cleaned;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == 'i' && i + 1 < text.size() && text[i + 1] == 'd') {
      i += 2;
    } else {
      cleaned.push_back(text[i++]);
    }
  }

  Match longest;
  bool found = false;
  for (size_t i = 0; i < cleaned.size();) {
    if (!IsPythonDecimal(cleaned[i])) {
      ++i;
      continue;
    }
    const size_t end = MatchChain(cleaned, i);
    if (!found || end - i > longest.end - longest.begin) {
      longest = {i, end};
      found = true;
    }
    i = end;
  }

  std::vector<std::u32string> ids;
  if (found) {
    for (size_t i = longest.begin; i < longest.end;) {
      if (!IsPythonDecimal(cleaned[i])) {
        ++i;
        continue;
      }
      const size_t begin = i;
      while (i < longest.end && IsPythonDecimal(cleaned[i])) ++i;
      ids.push_back(cleaned.substr(begin, i - begin));
    }
  } else {
    ids.push_back(cleaned);
  }

  Ranking ranking;
  std::set<std::string> seen;
  const int size = static_cast<int>(ids.size());
  for (int i = 0; i < size; ++i) {
    std::string id = internal::EncodeUtf8(ids[i]);
    if (seen.insert(id).second) ranking.emplace_back(std::move(id), size - i);
  }
  return ranking;
}

std::vector<int> HelmetCutoffs(int candidates) {
  std::vector<int> cutoffs;
  for (int k : {1, 5, 10, 20, 50, 100, 200, 500, 1000}) {
    if (k <= candidates) cutoffs.push_back(k);
  }
  return cutoffs;
}

absl::StatusOr<MetricValues> RetrievalMetrics(const Ranking& ranking,
                                              const std::vector<Qrel>& qrels,
                                              const std::vector<int>& cutoffs) {
  if (qrels.empty()) return absl::InvalidArgumentError("qrels: no judged document");
  if (cutoffs.empty()) return absl::InvalidArgumentError("cutoffs: none given");
  for (size_t i = 0; i < cutoffs.size(); ++i) {
    if (cutoffs[i] <= 0 || (i > 0 && cutoffs[i] <= cutoffs[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat("cutoffs: must be positive and increasing, got ", cutoffs[i], " at ", i));
    }
  }
  std::map<std::string, int> judged;
  for (const Qrel& qrel : qrels) {
    if (qrel.relevance < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("qrels: document '", qrel.doc_id, "' has negative label ", qrel.relevance));
    }
    if (!judged.emplace(qrel.doc_id, qrel.relevance).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("qrels: document '", qrel.doc_id, "' is judged twice"));
    }
  }
  std::map<std::string, int> retrieved;
  for (const auto& [doc_id, score] : ranking) {
    if (!retrieved.emplace(doc_id, score).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("ranking: document '", doc_id, "' is ranked twice"));
    }
  }

  const ResultRelevance rel = FormResultRelevance(ranking, judged);
  MetricValues metrics;
  auto add = [&](absl::string_view name, const std::vector<double>& values) {
    for (size_t i = 0; i < cutoffs.size(); ++i) {
      metrics.emplace_back(absl::StrCat(name, "@", cutoffs[i]), PythonRound(values[i], 5));
    }
  };
  add("NDCG", NdcgAt(rel, cutoffs));
  add("MAP", MapAt(rel, cutoffs));
  add("Recall", RecallAt(rel, cutoffs));
  add("P", PrecisionAt(rel, cutoffs));
  metrics.emplace_back("MRR", PythonRound(ReciprocalRank(rel), 5));
  return metrics;
}

}  // namespace prolong::evaluator::metrics
