// Collectives between training ranks behind one interface: Gloo over TCP on CPU (LibTorch's
// c10d), NCCL on GPU. A gang of `world_size` processes meets at a TCP store (a key-value server
// one process hosts, normally the launcher); every rank then builds the same communicators.
//
// Ranks are laid out with context parallelism innermost: rank = dp_rank * cp_size + cp_rank, so
// the ranks that share a sequence are neighbours (on GPUs: within a node).
//
// Thread-safety: a communicator's collectives are called from one thread at a time (a backward
// hook counts: it runs while the thread that started backward waits), in the same order on every
// member. A PendingWork may be waited for on any thread, once.
#ifndef PROLONG_TRAINER_COMM_COMMUNICATOR_H_
#define PROLONG_TRAINER_COMM_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "torch/types.h"

namespace prolong::comm {

// A collective or point-to-point exchange started by an *Async call (or SendRecv) and not yet
// known to be finished.
class PendingWork {
 public:
  virtual ~PendingWork() = default;
  // Blocks until it has finished (outputs are then valid, a send's tensor may be reused); throws,
  // like the blocking collectives, when a member fails or it times out. Call it exactly once,
  // before touching the tensors involved.
  virtual void Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Sums `tensor` over the members, in place.
  virtual void AllReduceSum(torch::Tensor& tensor) = 0;
  // Starts AllReduceSum of `tensor` and returns at once; `tensor` must be neither read nor
  // written until Wait returns. Collectives are matched by the order they are started in, async
  // or not. The default runs it to completion here, for communicators without async support.
  virtual std::unique_ptr<PendingWork> AllReduceSumAsync(torch::Tensor& tensor);
  // Every member's `tensor` (the same shape on all), concatenated along dim 0 in rank order.
  virtual torch::Tensor AllGather(const torch::Tensor& tensor) = 0;
  // Starts AllGather of `tensor` into `out` (size() times its rows, contiguous, of its dtype)
  // and returns at once, so that compute can overlap it; neither may be touched until Wait
  // returns. The default runs it to completion here.
  virtual std::unique_ptr<PendingWork> AllGatherAsync(const torch::Tensor& tensor,
                                                      torch::Tensor& out);
  // `tensor` has size() * n rows; returns rows [rank * n, (rank + 1) * n) summed over members.
  virtual torch::Tensor ReduceScatterSum(const torch::Tensor& tensor) = 0;
  // `tensor` has size() * n rows; its block r (rows [r * n, (r + 1) * n)) goes to member r, and
  // the result's block r is what member r sent here. Its own inverse.
  virtual torch::Tensor AllToAll(const torch::Tensor& tensor) = 0;
  // Starts sending `send` to member `to` and receiving into `recv` (the shape and dtype of what
  // `from` sends; contiguous) from member `from`, and returns without waiting, so that compute
  // can overlap the transfer. Every member posts its exchanges in the same order; a member may
  // have several in flight. A ring shift is every member calling
  // SendRecv(x, (rank + 1) % size, y, (rank + size - 1) % size): no order of Wait() calls
  // deadlocks it.
  virtual std::unique_ptr<PendingWork> SendRecv(const torch::Tensor& send, int to,
                                                torch::Tensor& recv, int from) = 0;
  virtual void Barrier() = 0;
};

// A PendingWork that was finished when it was made.
struct FinishedWork final : PendingWork {
  void Wait() override {}
};

inline std::unique_ptr<PendingWork> Communicator::AllReduceSumAsync(torch::Tensor& tensor) {
  AllReduceSum(tensor);
  return std::make_unique<FinishedWork>();
}

inline std::unique_ptr<PendingWork> Communicator::AllGatherAsync(const torch::Tensor& tensor,
                                                                 torch::Tensor& out) {
  out.copy_(AllGather(tensor));
  return std::make_unique<FinishedWork>();
}

// A TCP store served by this process (rank 0, or a test) until destroyed.
class StoreServer {
 public:
  virtual ~StoreServer() = default;
  // host:port the ranks connect to.
  virtual std::string address() const = 0;
};
// Port 0 picks a free port.
absl::StatusOr<std::unique_ptr<StoreServer>> ServeStore(const std::string& host, int port = 0);

struct RendezvousOptions {
  std::string store_address;  // host:port of a StoreServer.
  int rank = 0;
  int world_size = 1;
  int dp_size = 1;
  int cp_size = 1;
  // Hybrid sharding of the weights (parallel_plan.h): groups of this many consecutive ranks
  // each hold one copy of the sharded weights. 0, or the world size: no such groups.
  int shard_size = 0;
  // How long ranks wait for each other to arrive.
  absl::Duration timeout = absl::Seconds(60);
  // How long a collective waits for its slowest member, e.g. for rank 0 to save a large
  // checkpoint while the others wait for it.
  absl::Duration collective_timeout = absl::Minutes(30);
};

// This rank's communicators. `cp` holds the ranks of its data-parallel replica (the same
// dp_rank), `dp` the ranks with its cp_rank; `world` everyone. With a shard_size S between 1 and
// the world size, `shard` holds the S consecutive ranks [g S, (g + 1) S) this rank is among and
// `replica` the ranks at its place in the other such groups (rank modulo S); otherwise both are
// null.
struct ProcessGroups {
  int dp_rank = 0;
  int cp_rank = 0;
  std::unique_ptr<Communicator> world;
  std::unique_ptr<Communicator> dp;
  std::unique_ptr<Communicator> cp;
  std::unique_ptr<Communicator> shard;
  std::unique_ptr<Communicator> replica;
};

// Joins the gang over Gloo. INVALID_ARGUMENT for an inconsistent layout; DEADLINE_EXCEEDED
// naming the ranks that did not arrive within the timeout; UNAVAILABLE if the store cannot be
// reached.
absl::StatusOr<ProcessGroups> JoinGloo(const RendezvousOptions& options);

#ifdef PROLONG_CUDA
// The same over NCCL, for tensors on this rank's GPU (selected before joining); CPU tensors
// given to the collectives are staged through the GPU and come back on the CPU. Built only
// with a CUDA LibTorch (--config=cuda).
absl::StatusOr<ProcessGroups> JoinNccl(const RendezvousOptions& options);
#endif

}  // namespace prolong::comm

#endif  // PROLONG_TRAINER_COMM_COMMUNICATOR_H_
