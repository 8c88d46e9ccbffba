#include "trainer/attention/fused_kernel.h"

#include "common/named_enum.h"

namespace prolong::attention {
namespace {

constexpr EnumName<FusedKernel> kKernels[] = {
    {FusedKernel::kPerDocument, "per-document"},
    {FusedKernel::kPerDocumentGqa, "per-document-gqa"},
    {FusedKernel::kVarlenFlash, "varlen-flash"},
    {FusedKernel::kPerDocumentCudnn, "per-document-cudnn"},
    {FusedKernel::kHybrid, "hybrid"},
};

}  // namespace

absl::string_view FusedKernelName(FusedKernel kernel) { return NameOf(kKernels, kernel); }

std::vector<std::string> FusedKernelNames() { return NamesOf(kKernels); }

absl::StatusOr<FusedKernel> ParseFusedKernel(absl::string_view name) {
  return ParseName(kKernels, name, "GPU attention kernel");
}

}  // namespace prolong::attention
