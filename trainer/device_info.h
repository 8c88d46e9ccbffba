// What the trainer can run on: the LibTorch it was built against, the CUDA devices it sees and,
// in a --config=cuda build, the NCCL version. Kept free of LibTorch headers.
#ifndef PROLONG_TRAINER_DEVICE_INFO_H_
#define PROLONG_TRAINER_DEVICE_INFO_H_

#include <string>

#include "absl/strings/string_view.h"

namespace prolong::trainer {

struct DeviceInfo {
  std::string libtorch_version;  // "1.13.0"
  bool built_with_cuda = false;  // --config=cuda
  int cuda_devices = 0;          // Visible at run time; 0 on CPU-only builds.
  std::string nccl_version;      // "2.27.3"; empty unless built with CUDA.

  // One line for logs: "LibTorch 1.13.0, CPU only".
  std::string ToString() const;
};

DeviceInfo GetDeviceInfo();

// The name the CUDA driver gives GPU `index` ("NVIDIA H100 80GB HBM3"); empty in a build
// without CUDA or for an index that does not exist.
std::string CudaDeviceName(int index);

// The dense (no sparsity) bf16 tensor-core peak of a GPU named `device_name`, in TFLOP/s, from
// NVIDIA's data sheets, for MFU; 0 for a device not in the table (a CPU, or a GPU it does not
// know). H100 and H200 in SXM form 989.4, PCIe 756, NVL 835; A100 and A800 312; B200 2250.
double PeakDenseBf16Tflops(absl::string_view device_name);

// Unless the environment configures PyTorch's CUDA allocator already (PYTORCH_CUDA_ALLOC_CONF or
// PYTORCH_ALLOC_CONF), sets PYTORCH_CUDA_ALLOC_CONF to expandable_segments:True, so that
// tensors of sizes that change every step (documents of new lengths) grow segments in place
// instead of leaving freed blocks that fit nothing: on an H100 this made per-document attention
// on mixed lengths 2.7x faster (docs/BENCHMARKS.md). Call before anything touches a GPU: the
// allocator reads its settings once. Returns whether it set them. Not thread-safe (setenv).
bool PreferExpandableCudaSegments();

}  // namespace prolong::trainer

#endif  // PROLONG_TRAINER_DEVICE_INFO_H_
