#include "trainer/attention/attention_memo.h"

namespace prolong::attention {
namespace {

thread_local AttentionMemo* current_memo = nullptr;
thread_local AttentionMemo::Mode current_mode = AttentionMemo::Mode::kRecord;

}  // namespace

AttentionMemo::Scope::Scope(AttentionMemo& memo, Mode mode)
    : previous_(current_memo), previous_mode_(current_mode) {
  current_memo = &memo;
  current_mode = mode;
  if (mode == Mode::kReplay) memo.replayed = 0;
}

AttentionMemo::Scope::~Scope() {
  current_memo = previous_;
  current_mode = previous_mode_;
}

std::optional<AttentionResult> ReplayAttention() {
  if (current_memo == nullptr || current_mode != AttentionMemo::Mode::kReplay) return std::nullopt;
  AttentionMemo& memo = *current_memo;
  TORCH_CHECK(memo.replayed * 2 + 1 < memo.tensors.size(),
              "a recomputed layer called attention more often than its forward did");
  AttentionResult result{memo.tensors[memo.replayed * 2], memo.tensors[memo.replayed * 2 + 1]};
  ++memo.replayed;
  return result;
}

void RecordAttention(const AttentionResult& result) {
  if (current_memo == nullptr || current_mode != AttentionMemo::Mode::kRecord) return;
  current_memo->tensors.push_back(result.out);
  current_memo->tensors.push_back(result.lse);
}

}  // namespace prolong::attention
