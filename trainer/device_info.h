// What the trainer can run on: the LibTorch it was built against, the CUDA devices it sees and,
// in a --config=cuda build, the NCCL version. Kept free of LibTorch headers.
#ifndef PROLONG_TRAINER_DEVICE_INFO_H_
#define PROLONG_TRAINER_DEVICE_INFO_H_

#include <string>

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

}  // namespace prolong::trainer

#endif  // PROLONG_TRAINER_DEVICE_INFO_H_
