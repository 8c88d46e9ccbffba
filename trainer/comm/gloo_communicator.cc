// The Gloo side of communicator.h, on LibTorch's c10d (its ProcessGroupGloo and TCPStore).
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "common/status_macros.h"
#include "torch/csrc/distributed/c10d/PrefixStore.hpp"
#include "torch/csrc/distributed/c10d/ProcessGroupGloo.hpp"
#include "torch/csrc/distributed/c10d/TCPStore.hpp"
#include "trainer/comm/communicator.h"

namespace prolong::comm {
namespace {

std::chrono::milliseconds ToChrono(absl::Duration duration) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(duration));
}

class GlooCommunicator final : public Communicator {
 public:
  explicit GlooCommunicator(c10::intrusive_ptr<c10d::ProcessGroupGloo> group)
      : group_(std::move(group)) {}

  int rank() const override { return group_->getRank(); }
  int size() const override { return group_->getSize(); }

  void AllReduceSum(torch::Tensor& tensor) override {
    std::vector<torch::Tensor> tensors = {tensor};
    group_->allreduce(tensors)->wait();
  }

  torch::Tensor AllGather(const torch::Tensor& tensor) override {
    const torch::Tensor input = tensor.contiguous();
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty_like(input));
    std::vector<torch::Tensor> inputs = {input};
    group_->allgather(outputs, inputs)->wait();
    return torch::cat(outputs[0], 0);
  }

  torch::Tensor ReduceScatterSum(const torch::Tensor& tensor) override {
    TORCH_CHECK(tensor.size(0) % size() == 0, "ReduceScatterSum: ", tensor.size(0),
                " rows do not split among ", size(), " ranks");
    // Gloo has no reduce-scatter: exchange the row blocks all-to-all, then sum what arrived.
    const torch::Tensor input = tensor.contiguous();
    torch::Tensor received = torch::empty_like(input);
    std::vector<int64_t> counts;
    group_->alltoall_base(received, const_cast<torch::Tensor&>(input), counts, counts)->wait();
    std::vector<int64_t> shape = input.sizes().vec();
    shape[0] /= size();
    shape.insert(shape.begin(), size());
    return received.view(shape).sum(0);
  }

  void Barrier() override { group_->barrier()->wait(); }

 private:
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

class TcpStoreServer final : public StoreServer {
 public:
  TcpStoreServer(c10::intrusive_ptr<c10d::TCPStore> store, std::string host)
      : store_(std::move(store)), host_(std::move(host)) {}
  std::string address() const override { return absl::StrCat(host_, ":", store_->getPort()); }

 private:
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::string host_;
};

// A Gloo group of `members` (world ranks, this one among them) under its own key prefix.
absl::StatusOr<std::unique_ptr<Communicator>> MakeGroup(
    const c10::intrusive_ptr<c10d::Store>& store, const std::string& name,
    const std::vector<int>& members, int world_rank, absl::Duration timeout) {
  const int rank =
      static_cast<int>(std::find(members.begin(), members.end(), world_rank) - members.begin());
  auto options = c10d::ProcessGroupGloo::Options::create(ToChrono(timeout));
  // Loopback for a single machine; other hosts are reached by their hostname's address.
  options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  try {
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>(name + "/", store), rank,
        static_cast<int>(members.size()), options);
    return std::make_unique<GlooCommunicator>(std::move(group));
  } catch (const std::exception& error) {
    return absl::UnavailableError(absl::StrCat("process group ", name, ": ", error.what()));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreServer>> ServeStore(const std::string& host, int port) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(port);
  options.isServer = true;
  options.waitWorkers = false;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
    return std::make_unique<TcpStoreServer>(std::move(store), host);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("rendezvous store on ", host, ":", port, ": ", error.what()));
  }
}

absl::StatusOr<ProcessGroups> JoinGloo(const RendezvousOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", options.rank, " of world size ",
                                                   options.world_size, ": out of range"));
  }
  if (options.dp_size * options.cp_size != options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("dp_size (", options.dp_size, ") x cp_size (",
                                                   options.cp_size, ") must equal world size (",
                                                   options.world_size, ")"));
  }
  ASSIGN_OR_RETURN(const HostPort address, ParseHostPort(options.store_address, "store_address"));
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(address.port);
  store_options.timeout = ToChrono(options.timeout);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(address.host, store_options);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("rendezvous store ", options.store_address, " unreachable: ", error.what()));
  }

  // Arrive, then wait for everyone, so that a rank that never comes is named.
  store->set(absl::StrCat("arrived/", options.rank), {1});
  const absl::Time deadline = absl::Now() + options.timeout;
  std::vector<std::string> keys;
  for (int r = 0; r < options.world_size; ++r) keys.push_back(absl::StrCat("arrived/", r));
  while (!store->check(keys)) {
    if (absl::Now() > deadline) {
      std::vector<int> missing;
      for (int r = 0; r < options.world_size; ++r) {
        if (!store->check({keys[r]})) missing.push_back(r);
      }
      return absl::DeadlineExceededError(absl::StrCat(
          "rendezvous at ", options.store_address, ": rank", missing.size() > 1 ? "s " : " ",
          absl::StrJoin(missing, ", "), " of ", options.world_size, " did not arrive within ",
          absl::FormatDuration(options.timeout)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  ProcessGroups groups;
  groups.dp_rank = options.rank / options.cp_size;
  groups.cp_rank = options.rank % options.cp_size;
  std::vector<int> world, dp, cp;
  for (int r = 0; r < options.world_size; ++r) {
    world.push_back(r);
    if (r % options.cp_size == groups.cp_rank) dp.push_back(r);
    if (r / options.cp_size == groups.dp_rank) cp.push_back(r);
  }
  ASSIGN_OR_RETURN(groups.world, MakeGroup(store, "world", world, options.rank, options.timeout));
  ASSIGN_OR_RETURN(groups.dp, MakeGroup(store, absl::StrCat("dp", groups.cp_rank), dp, options.rank,
                                        options.timeout));
  ASSIGN_OR_RETURN(groups.cp, MakeGroup(store, absl::StrCat("cp", groups.dp_rank), cp, options.rank,
                                        options.timeout));
  return groups;
}

}  // namespace prolong::comm
