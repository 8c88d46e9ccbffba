// Gloo over TCP (LibTorch's c10d ProcessGroupGloo): the communicator on CPU.
#include "absl/strings/str_cat.h"
#include "torch/csrc/distributed/c10d/ProcessGroupGloo.hpp"
#include "trainer/comm/communicator.h"
#include "trainer/comm/internal/c10d_communicator.h"

namespace prolong::comm {

absl::StatusOr<ProcessGroups> JoinGloo(const RendezvousOptions& options) {
  return internal::Join(
      options,
      [&](const c10::intrusive_ptr<c10d::Store>& store, const std::string& name, int rank,
          int size) -> absl::StatusOr<std::unique_ptr<Communicator>> {
        auto group_options =
            c10d::ProcessGroupGloo::Options::create(internal::ToChrono(options.collective_timeout));
        // This host's address (loopback when the hostname does not resolve).
        group_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        try {
          return std::make_unique<internal::C10dCommunicator<c10d::ProcessGroupGloo>>(
              c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, group_options),
              torch::Device(torch::kCPU));
        } catch (const std::exception& error) {
          return absl::UnavailableError(absl::StrCat("process group ", name, ": ", error.what()));
        }
      });
}

}  // namespace prolong::comm
