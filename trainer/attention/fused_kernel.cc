#include "trainer/attention/fused_kernel.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace prolong::attention {
namespace {

constexpr FusedKernel kKernels[] = {FusedKernel::kPerDocument, FusedKernel::kPerDocumentGqa,
                                    FusedKernel::kVarlenFlash, FusedKernel::kPerDocumentCudnn,
                                    FusedKernel::kHybrid};

}  // namespace

absl::string_view FusedKernelName(FusedKernel kernel) {
  switch (kernel) {
    case FusedKernel::kPerDocument:
      return "per-document";
    case FusedKernel::kPerDocumentGqa:
      return "per-document-gqa";
    case FusedKernel::kVarlenFlash:
      return "varlen-flash";
    case FusedKernel::kPerDocumentCudnn:
      return "per-document-cudnn";
    case FusedKernel::kHybrid:
      return "hybrid";
  }
  return "unknown";
}

std::vector<std::string> FusedKernelNames() {
  std::vector<std::string> names;
  for (FusedKernel kernel : kKernels) names.emplace_back(FusedKernelName(kernel));
  return names;
}

absl::StatusOr<FusedKernel> ParseFusedKernel(absl::string_view name) {
  for (FusedKernel kernel : kKernels) {
    if (name == FusedKernelName(kernel)) return kernel;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown GPU attention kernel \"", name,
                                                 "\"; expected one of ",
                                                 absl::StrJoin(FusedKernelNames(), ", ")));
}

}  // namespace prolong::attention
