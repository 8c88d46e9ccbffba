#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "common/status_macros.h"
#include "torch/csrc/distributed/c10d/PrefixStore.hpp"
#include "torch/csrc/distributed/c10d/TCPStore.hpp"
#include "trainer/comm/internal/c10d_communicator.h"

namespace prolong::comm {
namespace {

class TcpStoreServer final : public StoreServer {
 public:
  TcpStoreServer(c10::intrusive_ptr<c10d::TCPStore> store, std::string host)
      : store_(std::move(store)), host_(std::move(host)) {}
  std::string address() const override { return absl::StrCat(host_, ":", store_->getPort()); }

 private:
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::string host_;
};

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

namespace internal {

absl::StatusOr<ProcessGroups> Join(const RendezvousOptions& options, const GroupFactory& factory) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", options.rank, " of world size ",
                                                   options.world_size, ": out of range"));
  }
  if (options.dp_size * options.cp_size != options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("dp_size (", options.dp_size, ") x cp_size (",
                                                   options.cp_size, ") must equal world size (",
                                                   options.world_size, ")"));
  }
  if (options.shard_size < 0 || options.shard_size > options.world_size ||
      (options.shard_size > 0 && options.world_size % options.shard_size != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("shard_size (", options.shard_size,
                                                   ") must divide the world size (",
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
  store->set(absl::StrCat("arrived/", options.rank), std::vector<uint8_t>{1});
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
  auto make =
      [&](const std::string& name,
          const std::vector<int>& members) -> absl::StatusOr<std::unique_ptr<Communicator>> {
    const int rank =
        static_cast<int>(std::find(members.begin(), members.end(), options.rank) - members.begin());
    return factory(c10::make_intrusive<c10d::PrefixStore>(name + "/", store), name, rank,
                   static_cast<int>(members.size()));
  };
  std::vector<int> world, dp, cp;
  for (int r = 0; r < options.world_size; ++r) {
    world.push_back(r);
    if (r % options.cp_size == groups.cp_rank) dp.push_back(r);
    if (r / options.cp_size == groups.dp_rank) cp.push_back(r);
  }
  ASSIGN_OR_RETURN(groups.world, make("world", world));
  ASSIGN_OR_RETURN(groups.dp, make(absl::StrCat("dp", groups.cp_rank), dp));
  ASSIGN_OR_RETURN(groups.cp, make(absl::StrCat("cp", groups.dp_rank), cp));
  const int shard_size = options.shard_size;
  if (shard_size > 0 && shard_size < options.world_size) {
    const int group = options.rank / shard_size, place = options.rank % shard_size;
    std::vector<int> shard, replica;
    for (int r = 0; r < options.world_size; ++r) {
      if (r / shard_size == group) shard.push_back(r);
      if (r % shard_size == place) replica.push_back(r);
    }
    ASSIGN_OR_RETURN(groups.shard, make(absl::StrCat("shard", group), shard));
    ASSIGN_OR_RETURN(groups.replica, make(absl::StrCat("replica", place), replica));
  }
  return groups;
}

}  // namespace internal
}  // namespace prolong::comm
