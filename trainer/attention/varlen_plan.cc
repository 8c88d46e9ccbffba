#include "trainer/attention/varlen_plan.h"

#include <algorithm>
#include <map>
#include <utility>

namespace prolong::attention {

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
  // Sorted keys' positions, and each document's range [first, end) among them.
  std::vector<int64_t> positions;
  std::map<int64_t, std::pair<int64_t, int64_t>> documents;
  for (int64_t i = 0; i < static_cast<int64_t>(plan.key_order.size()); ++i) {
    const int64_t key = plan.key_order[i];
    auto [it, fresh] = documents.try_emplace(k_document[key], i, i);
    if (!fresh && k_position[key] == positions.back()) return std::nullopt;
    positions.push_back(k_position[key]);
    it->second.second = i + 1;
  }

  const int64_t queries = static_cast<int64_t>(q_document.size());
  VarlenCall* call = nullptr;  // the call the next run may join
  int64_t call_k_end = 0;
  for (int64_t begin = 0, end = 0; begin < queries; begin = end) {
    end = begin + 1;
    while (end < queries && q_document[end] == q_document[begin] &&
           q_position[end] == q_position[end - 1] + 1) {
      ++end;
    }
    const int64_t first_position = q_position[begin], end_position = q_position[end - 1] + 1;
    const auto it = documents.find(q_document[begin]);
    if (it == documents.end()) {
      call = nullptr;
      continue;
    }
    const auto keys_begin = positions.begin() + it->second.first;
    const auto keys_end = positions.begin() + it->second.second;
    const auto visible_end = std::lower_bound(keys_begin, keys_end, end_position);
    const int64_t key_count = visible_end - keys_begin;
    const int64_t own = visible_end - std::lower_bound(keys_begin, keys_end, first_position);
    if (key_count == 0) {
      call = nullptr;
      continue;
    }
    // Positions are distinct, so `own` keys in [c, e) are all of it only when there are e - c.
    if (own != 0 && own != end_position - first_position) return std::nullopt;
    const bool causal = own != 0;
    if (call == nullptr || call->causal != causal || it->second.first != call_k_end) {
      plan.calls.push_back(VarlenCall{begin, it->second.first, causal});
      call = &plan.calls.back();
    }
    call->cu_q.push_back(call->cu_q.back() + (end - begin));
    call->cu_k.push_back(call->cu_k.back() + key_count);
    call->max_q = std::max(call->max_q, end - begin);
    call->max_k = std::max(call->max_k, key_count);
    call_k_end = it->second.first + key_count;
  }
  return plan;
}

}  // namespace prolong::attention
