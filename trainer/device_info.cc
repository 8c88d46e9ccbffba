#include "trainer/device_info.h"

#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "torch/cuda.h"
#include "torch/version.h"

#ifdef PROLONG_CUDA
#include "cuda_runtime_api.h"
#include "nccl.h"
#endif

namespace prolong::trainer {

std::string DeviceInfo::ToString() const {
  std::string line = absl::StrCat("LibTorch ", libtorch_version);
  if (!built_with_cuda) return absl::StrCat(line, ", CPU only");
  return absl::StrCat(line, ", CUDA build, ", cuda_devices, " CUDA device(s) visible, NCCL ",
                      nccl_version);
}

DeviceInfo GetDeviceInfo() {
  DeviceInfo info;
  info.libtorch_version = TORCH_VERSION;
#ifdef PROLONG_CUDA
  info.built_with_cuda = true;
  info.cuda_devices = static_cast<int>(torch::cuda::device_count());
  int version = 0;
  if (ncclGetVersion(&version) == ncclSuccess) {
    // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
    info.nccl_version =
        absl::StrCat(version / 10000, ".", (version / 100) % 100, ".", version % 100);
  }
#endif
  return info;
}

std::string CudaDeviceName(int index) {
#ifdef PROLONG_CUDA
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, index) == cudaSuccess) return properties.name;
#endif
  (void)index;
  return "";
}

double PeakDenseBf16Tflops(absl::string_view device_name) {
  // Most specific first: "H100 PCIe" before "H100".
  static constexpr struct {
    const char* name_part;
    double tflops;
  } kPeaks[] = {
      {"H100 PCIe", 756}, {"H100 NVL", 835}, {"H100", 989.4}, {"H800 PCIe", 756}, {"H800", 989.4},
      {"H200 NVL", 835},  {"H200", 989.4},   {"B200", 2250},  {"A100", 312},      {"A800", 312},
  };
  for (const auto& peak : kPeaks) {
    if (absl::StrContains(device_name, peak.name_part)) return peak.tflops;
  }
  return 0;
}

bool PreferExpandableCudaSegments() {
  if (std::getenv("PYTORCH_CUDA_ALLOC_CONF") != nullptr ||
      std::getenv("PYTORCH_ALLOC_CONF") != nullptr) {
    return false;
  }
  // The older name, which every LibTorch reads (2.9 and later warn that it is deprecated; 2.9.1
  // ignored expandable_segments under the newer one, pytorch/pytorch#183387).
  return setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True", /*overwrite=*/0) == 0;
}

}  // namespace prolong::trainer
