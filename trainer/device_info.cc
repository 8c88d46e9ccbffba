#include "trainer/device_info.h"

#include "absl/strings/str_cat.h"
#include "torch/cuda.h"
#include "torch/version.h"

#ifdef PROLONG_CUDA
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

}  // namespace prolong::trainer
