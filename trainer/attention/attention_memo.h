// Selective activation checkpointing: a checkpointed layer's forward records what its attention
// computed (output and log-sum-exp) and the layer's recomputation replays it, so that the
// recomputation skips attention's forward (for long sequences the costliest part of a layer)
// while everything else is computed again. Attention whose backward needs only its inputs, out
// and lse takes part (DocumentMaskedAttention, AttendKeys, the ring scheme); other attention
// (per-document SDPA, whose backward needs its own forward graph) computes again.
//
// Thread-safety: the current memo belongs to a thread: a checkpointed layer's forward runs on
// one thread and its recomputation on one (the autograd engine's).
#ifndef PROLONG_TRAINER_ATTENTION_ATTENTION_MEMO_H_
#define PROLONG_TRAINER_ATTENTION_ATTENTION_MEMO_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "torch/types.h"
#include "trainer/attention/blockwise_attention.h"

namespace prolong::attention {

struct AttentionMemo {
  enum class Mode { kRecord, kReplay };

  // Makes `memo` this thread's memo in `mode` while the scope lasts (a replay starts from the
  // first result).
  class Scope {
   public:
    Scope(AttentionMemo& memo, Mode mode);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    AttentionMemo* previous_;
    Mode previous_mode_;
  };

  // Each recorded result's out and lse, in call order.
  std::vector<torch::Tensor> tensors;
  size_t replayed = 0;  // results handed out by the current replay
};

// The next recorded result while this thread replays a memo; nullopt otherwise.
std::optional<AttentionResult> ReplayAttention();

// Records `result` while this thread records a memo.
void RecordAttention(const AttentionResult& result);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_ATTENTION_MEMO_H_
