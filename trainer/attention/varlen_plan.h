// How to run document-masked causal attention (a query sees the keys of its document at
// positions up to its own) as varlen causal kernel calls, such as flash attention's: each call
// takes a run of queries and a run of keys cut into entries by cumulative lengths, and within an
// entry query row r sees key columns up to r + (keys - queries) (the mask aligned bottom-right).
//
// The keys come in any order (the all-gather scheme of context parallelism gathers them rank by
// rank, with padding rows of document -1); the plan sorts them by (document, position). A query
// run is a maximal run of one document with consecutive positions; its entry's keys are that
// document's keys from its first position to the run's last, which must all be there with
// consecutive positions. Consecutive runs whose key ranges follow each other share a call.
// A layout that does not meet this (keys missing, as a ring step's block) has no plan.
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
  std::vector<int64_t> cu_q = {0};
  std::vector<int64_t> cu_k = {0};
  int64_t max_q = 0;  // the longest entry's queries
  int64_t max_k = 0;  // and keys
};

struct VarlenPlan {
  // Sorted key i is input key key_order[i]; padding keys (document < 0) are left out.
  std::vector<int64_t> key_order;
  std::vector<VarlenCall> calls;  // in query order, covering every query once
};

// nullopt when the layouts cannot be planned (see above), or a key (document, position) repeats.
std::optional<VarlenPlan> PlanVarlenAttention(const std::vector<int64_t>& q_document,
                                              const std::vector<int64_t>& q_position,
                                              const std::vector<int64_t>& k_document,
                                              const std::vector<int64_t>& k_position);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_VARLEN_PLAN_H_
