// HELMET's re-rank scoring: parse_rankings over the model's "Ranking: ID3 > ID1 > ..." and the
// retrieval metrics it reads from pytrec_eval (trec_eval 9.0.8's ndcg_cut, map_cut, recall,
// P and recip_rank), per query, rounded to 5 decimals. Pure functions, thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_RETRIEVAL_H_
#define PROLONG_EVALUATOR_METRICS_RETRIEVAL_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evaluator/metrics/metric_values.h"

namespace prolong::evaluator::metrics {

// Document ids in ranked order with HELMET's scores (length of the ranking minus position;
// repeated ids keep their first score).
using Ranking = std::vector<std::pair<std::string, int>>;

// HELMET's parse_rankings: deletes "[", "]" and ":", lowercases, deletes every "id" (one pass,
// left to right), takes the longest chain of digit runs joined by ">" (the first of equal
// length; digits and spaces as Python's re sees them on str), and ranks its numbers. Without
// any digit the whole remaining text is the one document id.
Ranking ParseRankings(absl::string_view output);

// One judged document of a query.
struct Qrel {
  std::string doc_id;
  int relevance = 0;  // graded, >= 0; 1 and above count as relevant for MAP, recall, P, MRR
};

// The cutoffs HELMET uses for a query with `candidates` documents: 1, 5, 10, 20, 50, 100, 200,
// 500 and 1000, those not above `candidates`.
std::vector<int> HelmetCutoffs(int candidates);

// trec_eval's measures for one query, in HELMET's keys and order: NDCG@k (graded gains,
// log2 discount, ideal from all judged documents), MAP@k, Recall@k, P@k for each cutoff, then
// MRR; each rounded to 5 decimals as Python's round does. Documents outside `qrels` are
// non-relevant; ties in score rank the greater id (byte order) first, as trec_eval does.
// INVALID_ARGUMENT for empty qrels, a negative label, a repeated document, or cutoffs that are
// not positive and increasing.
absl::StatusOr<MetricValues> RetrievalMetrics(const Ranking& ranking,
                                              const std::vector<Qrel>& qrels,
                                              const std::vector<int>& cutoffs);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_RETRIEVAL_H_
