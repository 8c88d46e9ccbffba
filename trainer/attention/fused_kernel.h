// The ways the GPU attention core (fused_attention.h) can call LibTorch's fused kernels, and the
// spelling flags use for them. No LibTorch here, so launchers can check the flag.
//
// Thread-safe: the functions keep no state.
#ifndef PROLONG_TRAINER_ATTENTION_FUSED_KERNEL_H_
#define PROLONG_TRAINER_ATTENTION_FUSED_KERNEL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::attention {

enum class FusedKernel {
  kPerDocument,       // "per-document": SDPA per document, K and V expanded to every head
  kPerDocumentGqa,    // "per-document-gqa": SDPA per document with enable_gqa
  kVarlenFlash,       // "varlen-flash": one flash-attention call over the packed sequence
  kPerDocumentCudnn,  // "per-document-cudnn": cuDNN per document, on padded lengths
  kHybrid,            // "hybrid": long documents as kPerDocumentGqa, short ones as kVarlenFlash
};

// The trainer's kernel unless --gpu-attention says otherwise: the fastest, or within 2% of it,
// of the 8B layer at 64K tokens on an H100 for one document, 64 of 1,024 tokens and mixed
// lengths (docs/BENCHMARKS.md).
inline constexpr FusedKernel kDefaultFusedKernel = FusedKernel::kHybrid;

absl::string_view FusedKernelName(FusedKernel kernel);

// Every kernel's name, in declaration order.
std::vector<std::string> FusedKernelNames();

// INVALID_ARGUMENT naming the accepted values for anything but a kernel's name.
absl::StatusOr<FusedKernel> ParseFusedKernel(absl::string_view name);

}  // namespace prolong::attention

#endif  // PROLONG_TRAINER_ATTENTION_FUSED_KERNEL_H_
