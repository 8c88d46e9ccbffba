#include "trainer/worker/device.h"

#include <dlfcn.h>

#include <cstdlib>

#include "ATen/Parallel.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "torch/cuda.h"

#ifdef PROLONG_CUDA
#include "c10/cuda/CUDAFunctions.h"
#endif

namespace prolong::worker {

void SetComputeThreads(int threads) {
  at::set_num_threads(threads);
  // Looked up rather than linked: the BLAS behind libblas.so.3 is chosen at install time.
  using SetBlasThreads = void (*)(int);
  if (auto set_blas_threads =
          reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas_threads(threads);
  }
}

absl::StatusOr<c10::Device> SelectDevice(const WorkerOptions& options) {
  if (options.device == "cpu") return c10::Device(c10::kCPU);
#ifdef PROLONG_CUDA
  const bool have_gpu = torch::cuda::is_available();
#else
  const bool have_gpu = false;
#endif
  if (options.device == "auto" && !have_gpu) return c10::Device(c10::kCPU);
  if (!have_gpu) {
#ifdef PROLONG_CUDA
    return absl::FailedPreconditionError("--device cuda: no GPU is visible to this process");
#else
    return absl::FailedPreconditionError(
        "--device cuda: this trainer was built without CUDA (build with --config=cuda against a "
        "CUDA LibTorch)");
#endif
  }
#ifdef PROLONG_CUDA
  const int64_t gpus = static_cast<int64_t>(torch::cuda::device_count());
  int64_t index = options.rank % gpus;
  // torchrun, Slurm and Kubernetes launchers say which GPU of the node is this rank's.
  if (const char* local_rank = std::getenv("LOCAL_RANK"); local_rank != nullptr) {
    if (!absl::SimpleAtoi(local_rank, &index) || index < 0 || index >= gpus) {
      return absl::FailedPreconditionError(absl::StrCat(
          "LOCAL_RANK=", local_rank, " is not a GPU of this node (", gpus, " visible)"));
    }
  }
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
#else
  return absl::InternalError("unreachable");
#endif
}

absl::StatusOr<comm::ProcessGroups> JoinGang(const comm::RendezvousOptions& rendezvous,
                                             const c10::Device& device) {
#ifdef PROLONG_CUDA
  if (device.is_cuda()) return comm::JoinNccl(rendezvous);
#endif
  return comm::JoinGloo(rendezvous);
}

}  // namespace prolong::worker
