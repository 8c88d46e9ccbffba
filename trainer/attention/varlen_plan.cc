#include "trainer/attention/varlen_plan.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace prolong::attention {
namespace {

// Where a document's keys sit among the sorted keys.
struct DocumentKeys {
  int64_t first_index = 0;
  int64_t first_position = 0;
  int64_t count = 0;
};

}  // namespace

std::optional<VarlenPlan> PlanVarlenAttention(const std::vector<int64_t>& q_document,
                                              const std::vector<int64_t>& q_position,
                                              const std::vector<int64_t>& k_document,
                                              const std::vector<int64_t>& k_position) {
  VarlenPlan plan;
  for (int64_t i = 0; i < static_cast<int64_t>(k_document.size()); ++i) {
    if (k_document[i] >= 0) plan.key_order.push_back(i);
  }
  std::sort(plan.key_order.begin(), plan.key_order.end(), [&](int64_t a, int64_t b) {
    return std::make_pair(k_document[a], k_position[a]) <
           std::make_pair(k_document[b], k_position[b]);
  });
  std::map<int64_t, DocumentKeys> documents;
  for (int64_t i = 0; i < static_cast<int64_t>(plan.key_order.size()); ++i) {
    const int64_t key = plan.key_order[i];
    auto [it, fresh] = documents.try_emplace(k_document[key], DocumentKeys{i, k_position[key], 0});
    // Within a document the sorted keys must have consecutive positions (no gap, no repeat).
    if (k_position[key] != it->second.first_position + it->second.count) return std::nullopt;
    ++it->second.count;
  }

  const int64_t queries = static_cast<int64_t>(q_document.size());
  VarlenCall* call = nullptr;
  int64_t call_k_end = 0;
  for (int64_t begin = 0; begin < queries;) {
    int64_t end = begin + 1;
    while (end < queries && q_document[end] == q_document[begin] &&
           q_position[end] == q_position[end - 1] + 1) {
      ++end;
    }
    const auto it = documents.find(q_document[begin]);
    if (it == documents.end()) return std::nullopt;
    const DocumentKeys& keys = it->second;
    const int64_t last_position = q_position[end - 1];
    // The run's first query must have keys (its own at least), and every key up to the last.
    if (q_position[begin] < keys.first_position ||
        last_position - keys.first_position >= keys.count) {
      return std::nullopt;
    }
    const int64_t key_count = last_position - keys.first_position + 1;
    if (call == nullptr || keys.first_index != call_k_end) {
      plan.calls.push_back(VarlenCall{begin, keys.first_index});
      call = &plan.calls.back();
    }
    call->cu_q.push_back(call->cu_q.back() + (end - begin));
    call->cu_k.push_back(call->cu_k.back() + key_count);
    call->max_q = std::max(call->max_q, end - begin);
    call->max_k = std::max(call->max_k, key_count);
    call_k_end = keys.first_index + key_count;
    begin = end;
  }
  return plan;
}

}  // namespace prolong::attention
