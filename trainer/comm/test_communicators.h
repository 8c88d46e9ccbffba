// Communicators for tests of code above the collectives, in one process: a group of one, and
// "two ranks" whose peer holds the same tensors as this one. Each records what it was asked.
#ifndef PROLONG_TRAINER_COMM_TEST_COMMUNICATORS_H_
#define PROLONG_TRAINER_COMM_TEST_COMMUNICATORS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "torch/torch.h"
#include "trainer/comm/communicator.h"

namespace prolong::comm::testing {

// Sums over two ranks holding the same tensors: doubles, and records each all-reduce's size.
class DoublingCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void AllReduceSum(torch::Tensor& tensor) override {
    sizes.push_back(tensor.numel());
    tensor.mul_(2);
  }
  torch::Tensor AllGather(const torch::Tensor& tensor) override {
    return torch::cat({tensor, tensor});
  }
  torch::Tensor ReduceScatterSum(const torch::Tensor& tensor) override {
    return tensor.narrow(0, 0, tensor.size(0) / 2) * 2;
  }
  // The peer sends its block 0 (for rank 0), which is this rank's block 0.
  torch::Tensor AllToAll(const torch::Tensor& tensor) override {
    const torch::Tensor mine = tensor.narrow(0, 0, tensor.size(0) / 2);
    return torch::cat({mine, mine});
  }
  // The peer holds the same tensors, so it sends what this rank sends.
  std::unique_ptr<PendingWork> SendRecv(const torch::Tensor& send, int, torch::Tensor& recv,
                                        int) override {
    recv.copy_(send);
    return std::make_unique<FinishedWork>();
  }
  void Barrier() override {}

  std::vector<int64_t> sizes;
};

// A group of one; records whether each all-reduce ran inside backward, where the autograd
// engine turns grad mode off.
class OneRankCommunicator : public Communicator {
 public:
  explicit OneRankCommunicator(std::vector<bool>* in_backward = nullptr)
      : in_backward_(in_backward) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void AllReduceSum(torch::Tensor&) override {
    if (in_backward_ != nullptr) in_backward_->push_back(!torch::GradMode::is_enabled());
  }
  torch::Tensor AllGather(const torch::Tensor& tensor) override { return tensor.clone(); }
  torch::Tensor ReduceScatterSum(const torch::Tensor& tensor) override { return tensor.clone(); }
  torch::Tensor AllToAll(const torch::Tensor& tensor) override { return tensor.clone(); }
  std::unique_ptr<PendingWork> SendRecv(const torch::Tensor& send, int, torch::Tensor& recv,
                                        int) override {
    recv.copy_(send);
    return std::make_unique<FinishedWork>();
  }
  void Barrier() override {}

 private:
  std::vector<bool>* in_backward_;
};

}  // namespace prolong::comm::testing

#endif  // PROLONG_TRAINER_COMM_TEST_COMMUNICATORS_H_
