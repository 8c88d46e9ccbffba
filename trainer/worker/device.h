// Where a trainer rank computes, and the communicators that go with it: the CPU with Gloo, or
// one GPU per rank with NCCL (a CUDA build, --config=cuda). On a GPU the step runs in bf16
// mixed precision by default (ProLong trained in bf16), each document's attention through the
// fused kernels unless the rank shares its sequences with others (context parallelism).
#ifndef PROLONG_TRAINER_WORKER_DEVICE_H_
#define PROLONG_TRAINER_WORKER_DEVICE_H_

#include "absl/status/statusor.h"
#include "c10/core/Device.h"
#include "trainer/comm/communicator.h"
#include "trainer/worker/worker_options.h"

namespace prolong::worker {

// --device: cpu; cuda (GPU LOCAL_RANK if the launcher sets it, else rank modulo the GPUs
// visible), made this thread's current device; auto: cuda when this build has CUDA and a GPU
// is visible, else cpu. FAILED_PRECONDITION for cuda in a build without CUDA or with no GPU.
absl::StatusOr<c10::Device> SelectDevice(const WorkerOptions& options);

// Computes on `threads` CPU threads: ATen's pool and, where LibTorch multiplies through OpenBLAS
// (Debian's libtorch), OpenBLAS's own pool, which otherwise takes every core whatever ATen is
// told, so that ranks sharing a machine spin against each other.
void SetComputeThreads(int threads);

// Joins the gang with the device's communicators: NCCL for a GPU, Gloo for the CPU.
absl::StatusOr<comm::ProcessGroups> JoinGang(const comm::RendezvousOptions& rendezvous,
                                             const c10::Device& device);

}  // namespace prolong::worker

#endif  // PROLONG_TRAINER_WORKER_DEVICE_H_
