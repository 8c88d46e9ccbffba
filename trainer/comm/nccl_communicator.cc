// NCCL (c10d ProcessGroupNCCL of a CUDA LibTorch): the communicator on GPUs. Built only with
// --config=cuda; each rank must have selected its device (cudaSetDevice / at::cuda::set_device)
// before joining: the communicators run their collectives there.
#include "absl/strings/str_cat.h"
#include "c10/cuda/CUDAFunctions.h"
#include "torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp"
#include "trainer/comm/communicator.h"
#include "trainer/comm/internal/c10d_communicator.h"

namespace prolong::comm {

absl::StatusOr<ProcessGroups> JoinNccl(const RendezvousOptions& options) {
  return internal::Join(
      options,
      [&](const c10::intrusive_ptr<c10d::Store>& store, const std::string& name, int rank,
          int size) -> absl::StatusOr<std::unique_ptr<Communicator>> {
        auto group_options = c10d::ProcessGroupNCCL::Options::create();
        group_options->timeout = internal::ToChrono(options.collective_timeout);
        try {
          return std::make_unique<internal::C10dCommunicator<c10d::ProcessGroupNCCL>>(
              c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, group_options),
              torch::Device(torch::kCUDA, c10::cuda::current_device()));
        } catch (const std::exception& error) {
          return absl::UnavailableError(absl::StrCat("NCCL group ", name, ": ", error.what()));
        }
      });
}

}  // namespace prolong::comm
