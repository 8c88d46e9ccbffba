// What the Gloo and NCCL communicators share: a Communicator over any c10d process group (the
// collectives have the same signatures in both), and the rendezvous that names missing ranks.
// Included only by the backends' .cc files: it pulls in c10d.
#ifndef PROLONG_TRAINER_COMM_INTERNAL_C10D_COMMUNICATOR_H_
#define PROLONG_TRAINER_COMM_INTERNAL_C10D_COMMUNICATOR_H_

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "torch/csrc/distributed/c10d/Store.hpp"
#include "torch/csrc/distributed/c10d/Work.hpp"
#include "trainer/comm/communicator.h"

namespace prolong::comm::internal {

inline std::chrono::milliseconds ToChrono(absl::Duration duration) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(duration));
}

// Gloo has no bfloat16. A gather moves bits without arithmetic, so bfloat16 travels as the
// float16 of the same bytes (a view: no copy).
inline torch::Tensor AsMovable(const torch::Tensor& tensor) {
  return tensor.scalar_type() == torch::kBFloat16 ? tensor.view(torch::kHalf) : tensor;
}

// A c10d Work behind PendingWork; the Work keeps its tensors alive until it is done.
class C10dWork final : public PendingWork {
 public:
  explicit C10dWork(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
  void Wait() override { work_->wait(); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
};

// Collectives run on `device` (the CPU for Gloo, this rank's GPU for NCCL). A tensor elsewhere
// (the trainer's and the worker's small CPU tensors of counts and flags, under NCCL) is staged
// there and its result comes back to where the tensor was, so callers need not know the backend.
template <typename Group>
class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<Group> group, torch::Device device)
      : group_(std::move(group)), device_(device) {}

  int rank() const override { return group_->getRank(); }
  int size() const override { return group_->getSize(); }

  void AllReduceSum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors = {OnDevice(tensor)};
    group_->allreduce(tensors)->wait();
    if (!tensors[0].is_same(tensor)) tensor.copy_(tensors[0]);
  }

  std::unique_ptr<PendingWork> AllReduceSumAsync(torch::Tensor& tensor) override {
    // Staged tensors are small and rare: reduce them at once.
    if (tensor.device() != device_) return Communicator::AllReduceSumAsync(tensor);
    std::vector<torch::Tensor> tensors = {tensor};
    return std::make_unique<C10dWork>(group_->allreduce(tensors));
  }

  torch::Tensor AllGather(const torch::Tensor& tensor) override {
    const torch::Tensor input = AsMovable(OnDevice(tensor).contiguous());
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty_like(input));
    std::vector<torch::Tensor> inputs = {input};
    group_->allgather(outputs, inputs)->wait();
    return torch::cat(outputs[0], 0).view(tensor.scalar_type()).to(tensor.device());
  }

  std::unique_ptr<PendingWork> AllGatherAsync(const torch::Tensor& tensor,
                                              torch::Tensor& out) override {
    if (tensor.device() != device_ || out.device() != device_) {
      return Communicator::AllGatherAsync(tensor, out);
    }
    TORCH_CHECK(out.is_contiguous() && out.size(0) == size() * tensor.size(0),
                "AllGatherAsync: out must be contiguous with ", size(), " x ", tensor.size(0),
                " rows");
    std::vector<std::vector<torch::Tensor>> outputs = {AsMovable(out).chunk(size(), 0)};
    std::vector<torch::Tensor> inputs = {AsMovable(tensor.contiguous())};
    return std::make_unique<C10dWork>(group_->allgather(outputs, inputs));
  }

  torch::Tensor ReduceScatterSum(const torch::Tensor& tensor) override {
    TORCH_CHECK(tensor.size(0) % size() == 0, "ReduceScatterSum: ", tensor.size(0),
                " rows do not split among ", size(), " ranks");
    // Gloo has no reduce-scatter: exchange the row blocks all-to-all, then sum what arrived.
    torch::Tensor input = OnDevice(tensor).contiguous();
    torch::Tensor received = torch::empty_like(input);
    std::vector<int64_t> counts;
    group_->alltoall_base(received, input, counts, counts)->wait();
    std::vector<int64_t> shape = input.sizes().vec();
    shape[0] /= size();
    shape.insert(shape.begin(), size());
    return received.view(shape).sum(0).to(tensor.device());
  }

  torch::Tensor AllToAll(const torch::Tensor& tensor) override {
    TORCH_CHECK(tensor.size(0) % size() == 0, "AllToAll: ", tensor.size(0),
                " rows do not split among ", size(), " ranks");
    torch::Tensor input = OnDevice(tensor).contiguous();
    torch::Tensor received = torch::empty_like(input);
    std::vector<int64_t> counts;  // empty: equal blocks
    group_->alltoall_base(received, input, counts, counts)->wait();
    return received.to(tensor.device());
  }

  std::unique_ptr<PendingWork> SendRecv(const torch::Tensor& send, int to, torch::Tensor& recv,
                                        int from) override {
    TORCH_CHECK(recv.is_contiguous(), "SendRecv: recv must be contiguous");
    TORCH_CHECK(send.device() == device_ && recv.device() == device_,
                "SendRecv: tensors must be on the communicator's device ", device_.str());
    std::vector<torch::Tensor> outgoing = {send.contiguous()};
    std::vector<torch::Tensor> incoming = {recv};
    // Members post exchanges in the same order, so the n-th send of one matches the n-th receive
    // of its peer; a tag per exchange keeps several in flight apart (Gloo matches by tag).
    const int tag = next_tag_;
    next_tag_ = (next_tag_ + 1) % (1 << 30);
    auto exchange = std::make_unique<Exchange>();
    // NCCL runs a pair's sends and receives in the order posted on one stream: with two members
    // both sending first would wait for each other, so odd members receive first.
    if (rank() % 2 == 0) {
      exchange->works.push_back(group_->send(outgoing, to, tag));
      exchange->works.push_back(group_->recv(incoming, from, tag));
    } else {
      exchange->works.push_back(group_->recv(incoming, from, tag));
      exchange->works.push_back(group_->send(outgoing, to, tag));
    }
    exchange->tensors = {outgoing[0], incoming[0]};
    return exchange;
  }

  void Barrier() override { group_->barrier()->wait(); }

 private:
  struct Exchange final : PendingWork {
    void Wait() override {
      for (const auto& work : works) work->wait();
    }
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::vector<torch::Tensor> tensors;  // Alive until the transfer is done.
  };

  torch::Tensor OnDevice(const torch::Tensor& tensor) const {
    return tensor.device() == device_ ? tensor : tensor.to(device_);
  }

  c10::intrusive_ptr<Group> group_;
  torch::Device device_;
  int next_tag_ = 0;
};

// Makes one group of `members` (world ranks, this one among them) under the key prefix `name`.
using GroupFactory = std::function<absl::StatusOr<std::unique_ptr<Communicator>>(
    const c10::intrusive_ptr<c10d::Store>& store, const std::string& name, int rank, int size)>;

// Connects to the store, waits for every rank (naming the missing ones on timeout) and builds
// the world, dp and cp groups (and shard and replica, see ProcessGroups) with `factory`.
absl::StatusOr<ProcessGroups> Join(const RendezvousOptions& options, const GroupFactory& factory);

}  // namespace prolong::comm::internal

#endif  // PROLONG_TRAINER_COMM_INTERNAL_C10D_COMMUNICATOR_H_
