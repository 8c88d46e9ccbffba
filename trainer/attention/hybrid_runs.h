// How the hybrid GPU attention (fused_attention.h, FusedKernel::kHybrid) splits a packed
// sequence: each long document alone, through SDPA; the short documents between long ones in
// runs, each run through one varlen flash-attention call. No LibTorch here.
#ifndef PROLONG_TRAINER_ATTENTION_HYBRID_RUNS_H_
#define PROLONG_TRAINER_ATTENTION_HYBRID_RUNS_H_

#include <cstdint>
#include <vector>

namespace prolong::attention {

// Documents at least this long are attended alone. On an H100 (PyTorch 2.11) the 8B layer at
// 64K tokens ran a single document 1.4x faster through SDPA (as fast as cuDNN's own kernel) than
// through flash attention 2's varlen kernel, and 64 documents of 1,024 tokens 1.4x faster
// through one varlen call: a per-document call costs about 1 ms, and SDPA saves about
// 0.16 s x (L / 65,536)^2 on a document of L tokens, more than that from about 5,000 tokens on.
inline constexpr int64_t kLongDocumentTokens = 8192;

struct HybridRun {
  int64_t begin = 0;
  int64_t length = 0;
  bool long_document = false;  // one document; otherwise one or more short ones
};

// `bounds`: where each document begins, then the end of the last (0 alone for no tokens).
// The runs cover every token, in order.
std::vector<HybridRun> HybridRuns(const std::vector<int64_t>& bounds,
                                  int64_t long_document_tokens = kLongDocumentTokens);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_HYBRID_RUNS_H_
