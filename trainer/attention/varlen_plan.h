// How to run document-masked attention (a query sees the keys of its document at positions up
// to its own) of queries to any set of keys as varlen kernel calls, such as flash attention's:
// each call takes a run of queries and a run of keys cut into entries by cumulative lengths.
// Within an entry of a causal call query row r sees key columns up to r + (keys - queries) (the
// mask aligned bottom-right); within an entry of a non-causal call it sees every column.
//
// The keys come in any order (the all-gather scheme of context parallelism gathers them rank by
// rank, with padding rows of document -1; a ring step holds one rank's block); the plan sorts
// them by (document, position). A query run is a maximal run of one document with consecutive
// positions [c, e); its entry's keys are its document's keys before e. Of those, the keys at c
// or after must be none (a non-causal entry: every key precedes every query, as in a block of
// another rank's chunks) or all of c..e-1 (a causal entry: the run's own tokens, after any
// earlier keys). A run without keys is in no call: its rows see nothing. Consecutive runs of
// the same kind whose key ranges follow each other share a call.
//
// No LibTorch here: layouts as plain vectors.
#ifndef PROLONG_TRAINER_ATTENTION_VARLEN_PLAN_H_
#define PROLONG_TRAINER_ATTENTION_VARLEN_PLAN_H_

#include <cstdint>
#include <optional>
#include <vector>

namespace prolong::attention {

// One kernel call: queries [q_begin, q_begin + cu_q.back()) in query order against sorted keys
// [k_begin, k_begin + cu_k.back()), in entries given by cumulative lengths (from 0).
struct VarlenCall {
  int64_t q_begin = 0;
  int64_t k_begin = 0;
  bool causal = true;
  std::vector<int64_t> cu_q = {0};
  std::vector<int64_t> cu_k = {0};
  int64_t max_q = 0;  // the longest entry's queries
  int64_t max_k = 0;  // and keys
};

struct VarlenPlan {
  // Sorted key i is input key key_order[i]; padding keys (document < 0) are left out.
  std::vector<int64_t> key_order;
  // In query order, each query in one call at most; a query in none sees no key.
  std::vector<VarlenCall> calls;
};

// nullopt when a query run's keys at or after its first position are neither none nor all of
// its positions, or a key (document, position) repeats.
std::optional<VarlenPlan> PlanVarlenAttention(const std::vector<int64_t>& q_document,
                                              const std::vector<int64_t>& q_position,
                                              const std::vector<int64_t>& k_document,
                                              const std::vector<int64_t>& k_position);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_VARLEN_PLAN_H_
