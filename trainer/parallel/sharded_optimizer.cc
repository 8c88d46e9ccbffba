#include "trainer/parallel/sharded_optimizer.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "trainer/parallel/optimizer_state_key.h"

namespace prolong::parallel {
namespace {

using torch::Tensor;
using torch::optim::AdamW;
using torch::optim::AdamWParamState;

using StateMap = OptimizerStateMap;

OptimizerStateKey KeyOf(const Tensor& parameter) { return OptimizerStateKeyOf(parameter); }

// Copies items from their owners to every other rank in rounds of one AllGather each: in a
// round each rank sends the next of its items up to `bucket_bytes` (at least one), padded to the
// round's largest share. `numels` and `owners` are per item and the same on every rank;
// `send(i)` gives an item of this rank, `receive(i, values)` takes another rank's (flat; a view
// of the round's buffer).
void GatherFromOwners(comm::Communicator& comm, const std::vector<int>& owners,
                      const std::vector<int64_t>& numels, const torch::TensorOptions& options,
                      int64_t bucket_bytes, const std::function<Tensor(size_t)>& send,
                      const std::function<void(size_t, const Tensor&)>& receive) {
  const int ranks = comm.size();
  const int me = comm.rank();
  const int64_t element_bytes = static_cast<int64_t>(options.dtype().itemsize());
  std::vector<std::vector<size_t>> items(ranks);
  for (size_t i = 0; i < owners.size(); ++i) items[owners[i]].push_back(i);
  std::vector<size_t> next(ranks, 0);
  while (true) {
    std::vector<std::vector<size_t>> round(ranks);
    int64_t round_numel = 0;
    bool any = false;
    for (int r = 0; r < ranks; ++r) {
      int64_t numel = 0;
      while (next[r] < items[r].size()) {
        const size_t i = items[r][next[r]];
        if (!round[r].empty() && (numel + numels[i]) * element_bytes > bucket_bytes) break;
        round[r].push_back(i);
        numel += numels[i];
        ++next[r];
      }
      round_numel = std::max(round_numel, numel);
      any = any || !round[r].empty();
    }
    if (!any) return;
    // Every rank computed the same round, so all skip an empty exchange together.
    Tensor all = torch::empty({0}, options);
    if (round_numel > 0) {
      Tensor buffer = torch::zeros({round_numel}, options);
      int64_t offset = 0;
      for (size_t i : round[me]) {
        buffer.narrow(0, offset, numels[i]).copy_(send(i).reshape(-1));
        offset += numels[i];
      }
      all = comm.AllGather(buffer);
    }
    for (int r = 0; r < ranks; ++r) {
      if (r == me) continue;
      int64_t offset = static_cast<int64_t>(r) * round_numel;
      for (size_t i : round[r]) {
        receive(i, all.narrow(0, offset, numels[i]));
        offset += numels[i];
      }
    }
  }
}

}  // namespace

std::vector<int> AssignParameterOwners(const std::vector<Tensor>& parameters, int ranks) {
  std::vector<size_t> order(parameters.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return parameters[a].numel() > parameters[b].numel();
  });
  std::vector<int64_t> load(ranks, 0);
  std::vector<int> owners(parameters.size(), 0);
  for (size_t i : order) {
    const int rank = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owners[i] = rank;
    load[rank] += parameters[i].numel();
  }
  return owners;
}

OptimizerSharding::OptimizerSharding(std::vector<Tensor> parameters, comm::Communicator* comm,
                                     int64_t bucket_bytes)
    : parameters_(std::move(parameters)),
      comm_(comm),
      bucket_bytes_(bucket_bytes),
      owners_(AssignParameterOwners(parameters_, comm_->size())) {}

void OptimizerSharding::Step(AdamW& optimizer) {
  std::vector<Tensor> hidden(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (owns(i)) continue;
    hidden[i] = parameters_[i].grad();
    parameters_[i].mutable_grad() = Tensor();
  }
  auto restore = [&] {
    for (size_t i = 0; i < parameters_.size(); ++i) {
      if (!owns(i)) parameters_[i].mutable_grad() = hidden[i];
    }
  };
  try {
    optimizer.step();
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

void OptimizerSharding::BroadcastParameters() {
  if (parameters_.empty() || comm_->size() == 1) return;
  std::vector<int64_t> numels;
  for (const Tensor& p : parameters_) numels.push_back(p.numel());
  torch::NoGradGuard no_grad;
  GatherFromOwners(
      *comm_, owners_, numels, parameters_.front().options(), bucket_bytes_,
      [&](size_t i) { return parameters_[i].detach(); },
      [&](size_t i, const Tensor& values) {
        parameters_[i].copy_(values.view_as(parameters_[i]));
      });
}

void OptimizerSharding::GatherState(AdamW& optimizer) {
  if (parameters_.empty() || comm_->size() == 1) return;
  StateMap& states = optimizer.state();
  const int64_t count = static_cast<int64_t>(parameters_.size());
  // Which parameters have state (one never stepped has none), and their step counts.
  Tensor steps = torch::zeros({count, 2}, torch::kInt64);
  auto step_of = steps.accessor<int64_t, 2>();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!owns(i)) continue;
    const auto it = states.find(KeyOf(parameters_[i]));
    if (it == states.end()) continue;
    step_of[i][0] = 1;
    step_of[i][1] = static_cast<const AdamWParamState&>(*it->second).step();
  }
  comm_->AllReduceSum(steps);  // in place: step_of sees the sums

  // Items 2k and 2k + 1: exp_avg and exp_avg_sq of the k-th parameter with state.
  std::vector<size_t> parameter_of;
  std::vector<int> owners;
  std::vector<int64_t> numels;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (step_of[i][0] == 0) continue;
    for (int moment = 0; moment < 2; ++moment) {
      parameter_of.push_back(i);
      owners.push_back(owners_[i]);
      numels.push_back(parameters_[i].numel());
    }
  }
  const bool root = comm_->rank() == 0;
  std::vector<std::unique_ptr<AdamWParamState>> gathered(parameters_.size());
  GatherFromOwners(
      *comm_, owners, numels, parameters_.front().options(), bucket_bytes_,
      [&](size_t item) {
        const auto& state =
            static_cast<const AdamWParamState&>(*states.at(KeyOf(parameters_[parameter_of[item]])));
        return item % 2 == 0 ? state.exp_avg() : state.exp_avg_sq();
      },
      [&](size_t item, const Tensor& values) {
        if (!root) return;
        const size_t i = parameter_of[item];
        std::unique_ptr<AdamWParamState>& state = gathered[i];
        if (state == nullptr) {
          state = std::make_unique<AdamWParamState>();
          state->step(step_of[i][1]);
        }
        Tensor moment = values.view_as(parameters_[i]).clone();
        if (item % 2 == 0) {
          state->exp_avg(moment);
        } else {
          state->exp_avg_sq(moment);
        }
      });
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (gathered[i] != nullptr) states[KeyOf(parameters_[i])] = std::move(gathered[i]);
  }
}

void OptimizerSharding::DropOthersState(AdamW& optimizer) const {
  StateMap& states = optimizer.state();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!owns(i)) states.erase(KeyOf(parameters_[i]));
  }
}

}  // namespace prolong::parallel
