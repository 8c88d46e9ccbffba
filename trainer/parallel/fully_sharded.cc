#include "trainer/parallel/fully_sharded.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "trainer/parallel/gradient_reduction.h"
#include "trainer/parallel/optimizer_state_key.h"

namespace prolong::parallel {
namespace {

using torch::Tensor;
using torch::optim::AdamWParamState;

int64_t BlockRows(int64_t rows, int ranks) { return (rows + ranks - 1) / ranks; }

// Rank `rank`'s block of `whole` cut in `ranks` blocks of BlockRows rows (zero rows past the
// end): a new contiguous tensor.
Tensor CutBlock(const Tensor& whole, int rank, int ranks) {
  const int64_t rows = whole.size(0);
  const int64_t block = BlockRows(rows, ranks);
  const int64_t begin = std::min(rows, rank * block);
  const int64_t end = std::min(rows, begin + block);
  std::vector<int64_t> shape = whole.sizes().vec();
  shape[0] = block;
  Tensor cut = torch::zeros(shape, whole.options());
  cut.narrow(0, 0, end - begin).copy_(whole.narrow(0, begin, end - begin));
  return cut;
}

// Collective: the whole tensor of `rows` rows whose blocks the members of `shard` hold.
Tensor Whole(comm::Communicator& shard, const Tensor& block, int64_t rows) {
  return shard.AllGather(block.contiguous()).narrow(0, 0, rows);
}

}  // namespace

// One unit's parameters, gathered with one all-gather per gather dtype (matrices in the
// layers' compute dtype, vectors in their own) and reduced with one reduce-scatter.
class ShardedUnit final : public LayerWeights {
 public:
  ShardedUnit(const std::vector<Tensor>& parameters, torch::ScalarType matrix_dtype,
              FullySharded* owner)
      : owner_(owner) {
    comm::Communicator& shard = *owner_->shard_;
    for (const Tensor& p : parameters) {
      TORCH_CHECK(p.dim() >= 1, "sharded weights need parameters of one dimension or more");
      const torch::ScalarType dtype = p.dim() >= 2 ? matrix_dtype : p.scalar_type();
      whole_bytes_ += p.numel() * static_cast<int64_t>(c10::elementSize(dtype));
      auto flight = std::find_if(flights_.begin(), flights_.end(),
                                 [&](const Flight& f) { return f.dtype == dtype; });
      if (flight == flights_.end()) flight = flights_.insert(flights_.end(), Flight{dtype});
      flight->members.push_back(parameters_.size());
      Parameter parameter{p, CutBlock(p.detach(), shard.rank(), shard.size()), p.sizes().vec()};
      parameter.tensor.set_data(parameter.shard);  // `p` too: they share one TensorImpl
      parameters_.push_back(std::move(parameter));
    }
  }

  // Collective: starts gathering the whole weights, which Gather then waits for; nothing if
  // they are whole or on their way already.
  void Prefetch() {
    if (gathered_ || in_flight_) return;
    comm::Communicator& shard = *owner_->shard_;
    for (Flight& flight : flights_) {
      std::vector<Tensor> blocks;
      for (const size_t i : flight.members) {
        blocks.push_back(parameters_[i].shard.reshape(-1).to(flight.dtype));
      }
      flight.mine = torch::cat(blocks);
      flight.arriving = torch::empty({shard.size() * flight.mine.numel()}, flight.mine.options());
      flight.work = shard.AllGatherAsync(flight.mine, flight.arriving);
    }
    in_flight_ = true;
    owner_->CountGathered(whole_bytes_);
  }

  // Under mixed precision a layer's matrices are whole in bfloat16 (what autocast would cast
  // them to anyway), their gradients come back in bfloat16 and are summed in float32.
  void Gather() override {
    TORCH_CHECK(!gathered_, "a sharded unit was gathered twice");
    Prefetch();
    owner_->Gathering(this);
    comm::Communicator& shard = *owner_->shard_;
    for (Flight& flight : flights_) {
      flight.work->Wait();
      flight.work.reset();
      // Member i's blocks are row i.
      const Tensor all = flight.arriving.view({shard.size(), flight.mine.numel()});
      int64_t offset = 0;
      for (const size_t i : flight.members) {
        Parameter& p = parameters_[i];
        const int64_t numel = p.shard.numel();
        std::vector<int64_t> padded = p.shape;
        padded[0] = shard.size() * p.shard.size(0);
        p.tensor.set_data(
            all.narrow(1, offset, numel).contiguous().view(padded).narrow(0, 0, p.shape[0]));
        offset += numel;
      }
      flight.mine = flight.arriving = Tensor();
    }
    in_flight_ = false;
    gathered_ = true;
  }

  void Release() override {
    if (in_flight_) {
      // Abandoned with a gather in flight: it must end before its buffers go; a failed peer
      // fails the step anyway.
      for (Flight& flight : flights_) {
        try {
          flight.work->Wait();
        } catch (const std::exception&) {
        }
        flight.work.reset();
        flight.mine = flight.arriving = Tensor();
      }
      in_flight_ = false;
      owner_->CountGathered(-whole_bytes_);
    }
    if (!gathered_) return;
    for (Parameter& p : parameters_) p.tensor.set_data(p.shard);
    gathered_ = false;
    owner_->CountGathered(-whole_bytes_);
  }

  void AddGradients(const std::vector<Tensor>& gradients) override {
    TORCH_CHECK(gradients.size() == parameters_.size(), "a sharded unit of ", parameters_.size(),
                " parameters got ", gradients.size(), " gradients");
    comm::Communicator& shard = *owner_->shard_;
    const int ranks = shard.size();
    // Row i of `rows` holds member i's blocks of every gradient, as Gather lays out weights.
    std::vector<Tensor> rows;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      const Parameter& p = parameters_[i];
      std::vector<int64_t> padded = p.shape;
      padded[0] = ranks * p.shard.size(0);
      Tensor whole = torch::zeros(padded, p.shard.options());
      if (gradients[i].defined()) whole.narrow(0, 0, p.shape[0]).copy_(gradients[i]);
      rows.push_back(whole.view({ranks, -1}));
    }
    const Tensor summed = shard.ReduceScatterSum(torch::cat(rows, 1).view(-1));
    Release();
    int64_t offset = 0;
    for (Parameter& p : parameters_) {
      const Tensor block = summed.narrow(0, offset, p.shard.numel()).view(p.shard.sizes());
      offset += p.shard.numel();
      Tensor& grad = p.tensor.mutable_grad();
      if (grad.defined()) {
        grad.add_(block);
      } else {
        grad = block;
      }
    }
  }

  // The root unit around a micro-batch: its whole parameters collect whole gradients in .grad
  // through autograd, so the shards' gradients wait aside until they are reduced.
  void GatherForMicroBatch() {
    for (Parameter& p : parameters_) {
      p.stashed_grad = std::exchange(p.tensor.mutable_grad(), Tensor());
    }
    Gather();
  }
  void ReduceMicroBatch() {
    std::vector<Tensor> whole;
    for (Parameter& p : parameters_) {
      whole.push_back(std::exchange(p.tensor.mutable_grad(), std::exchange(p.stashed_grad, {})));
    }
    AddGradients(whole);
  }
  void Abandon() {
    if (!gathered_ && !in_flight_) return;
    for (Parameter& p : parameters_) p.tensor.mutable_grad() = std::exchange(p.stashed_grad, {});
    Release();
  }

  // The shards' tensors, with their gradients: what the optimizer steps.
  void AppendShardTensors(std::vector<Tensor>* tensors) const {
    for (const Parameter& p : parameters_) tensors->push_back(p.tensor);
  }

  // See FullySharded::Unshard and Reshard.
  void Unshard(OptimizerStateMap& states, bool keep) {
    TORCH_CHECK(!gathered_, "checkpoint state asked for in the middle of a step");
    comm::Communicator& shard = *owner_->shard_;
    for (Parameter& p : parameters_) {
      const int64_t rows = p.shape[0];
      const Tensor weights = Whole(shard, p.shard, rows);
      if (keep) {
        p.tensor.set_data(weights.to(torch::kCPU));
        p.whole = true;
      }
      const auto state = states.find(OptimizerStateKeyOf(p.tensor));
      if (state == states.end()) continue;
      auto& adamw = static_cast<AdamWParamState&>(*state->second);
      TORCH_CHECK(!adamw.max_exp_avg_sq().defined(), "sharded weights do not support amsgrad");
      const Tensor exp_avg = Whole(shard, adamw.exp_avg(), rows);
      const Tensor exp_avg_sq = Whole(shard, adamw.exp_avg_sq(), rows);
      if (keep) {
        adamw.exp_avg(exp_avg.to(torch::kCPU));
        adamw.exp_avg_sq(exp_avg_sq.to(torch::kCPU));
      }
    }
  }
  void Reshard(OptimizerStateMap& states, const torch::Device& device) {
    comm::Communicator& shard = *owner_->shard_;
    const auto cut = [&](const Tensor& whole) {
      return CutBlock(whole.detach(), shard.rank(), shard.size()).to(device);
    };
    for (Parameter& p : parameters_) {
      if (!p.whole) continue;
      p.shard = cut(p.tensor);
      p.tensor.set_data(p.shard);
      p.whole = false;
      const auto state = states.find(OptimizerStateKeyOf(p.tensor));
      if (state == states.end()) continue;
      auto& adamw = static_cast<AdamWParamState&>(*state->second);
      adamw.exp_avg(cut(adamw.exp_avg()));
      adamw.exp_avg_sq(cut(adamw.exp_avg_sq()));
    }
  }

  // Unshard's presence test: whether each parameter has AdamW state, 1 or 0.
  void AppendHasState(const OptimizerStateMap& states, std::vector<int64_t>* has) const {
    for (const Parameter& p : parameters_) {
      has->push_back(states.count(OptimizerStateKeyOf(p.tensor)));
    }
  }

 private:
  struct Parameter {
    Tensor tensor;               // the model's parameter
    Tensor shard;                // this rank's block: the parameter's data between uses
    std::vector<int64_t> shape;  // the whole parameter's
    Tensor stashed_grad;         // the root unit's shard gradient during a micro-batch
    bool whole = false;          // made whole by Unshard
  };

  // The parameters gathered in one dtype, and while a gather is in flight (Prefetch) this
  // rank's blocks and the buffer they all arrive in.
  struct Flight {
    torch::ScalarType dtype;
    std::vector<size_t> members;  // into parameters_
    Tensor mine, arriving;
    std::unique_ptr<comm::PendingWork> work;
  };

  FullySharded* owner_;
  std::vector<Parameter> parameters_;
  std::vector<Flight> flights_;
  int64_t whole_bytes_ = 0;  // in the gather dtypes
  bool in_flight_ = false;
  bool gathered_ = false;
};

FullySharded::FullySharded(model::LlamaForCausalLM& model, comm::Communicator* shard,
                           comm::Communicator* replica, torch::ScalarType layer_dtype)
    : shard_(shard), replica_(replica) {
  for (const auto& item : model.named_parameters()) {
    shapes_[item.key()] = {item.value().sizes().vec(), item.value().requires_grad()};
  }
  std::set<const c10::TensorImpl*> in_layers;
  for (const auto& layer : model.model->decoder_layers()) {
    std::vector<Tensor> parameters;
    for (const Tensor& p : layer->parameters()) {
      if (!p.requires_grad()) continue;
      parameters.push_back(p);
      in_layers.insert(p.unsafeGetTensorImpl());
    }
    layers_.push_back(std::make_unique<ShardedUnit>(parameters, layer_dtype, this));
    unit_of_[layer.get()] = layers_.back().get();
  }
  std::vector<Tensor> root;
  for (const Tensor& p : model.parameters()) {
    if (p.requires_grad() && in_layers.count(p.unsafeGetTensorImpl()) == 0) root.push_back(p);
  }
  if (!root.empty()) device_ = root.front().device();
  // The root stays float32: the embedding starts the float32 residual stream, and the blocked
  // loss takes lm_head in the final norm's dtype.
  root_ = std::make_unique<ShardedUnit>(root, torch::kFloat32, this);
}

FullySharded::~FullySharded() = default;

LayerWeights* FullySharded::layer_weights(const model::LlamaDecoderLayer& layer) const {
  const auto it = unit_of_.find(&layer);
  return it == unit_of_.end() ? nullptr : it->second;
}

void FullySharded::BeforeForward() {
  root_->GatherForMicroBatch();
  last_gathered_ = -1;
  if (!layers_.empty()) layers_.front()->Prefetch();
}

void FullySharded::Gathering(const ShardedUnit* unit) {
  const auto it = std::find_if(layers_.begin(), layers_.end(),
                               [&](const auto& layer) { return layer.get() == unit; });
  if (it == layers_.end()) return;  // the root
  // Forward goes up the layers and backward down: the next one in the same direction.
  const int index = static_cast<int>(it - layers_.begin());
  const int next = index > last_gathered_ ? index + 1 : index - 1;
  last_gathered_ = index;
  if (next >= 0 && next < static_cast<int>(layers_.size())) layers_[next]->Prefetch();
}

void FullySharded::AfterBackward() { root_->ReduceMicroBatch(); }

void FullySharded::ReduceGradients(int64_t bucket_bytes) {
  if (replica_ == nullptr || replica_->size() == 1) return;
  std::vector<Tensor> shards;
  root_->AppendShardTensors(&shards);
  for (const auto& layer : layers_) layer->AppendShardTensors(&shards);
  AllReduceGradients(shards, *replica_, bucket_bytes);
}

void FullySharded::Abandon() {
  root_->Abandon();
  for (const auto& layer : layers_) layer->Release();
  last_gathered_ = -1;
}

std::vector<int64_t> FullySharded::WholeShape(const std::string& name) const {
  const auto it = shapes_.find(name);
  return it == shapes_.end() ? std::vector<int64_t>() : it->second.first;
}

Tensor FullySharded::Part(const std::string& name, const Tensor& whole) const {
  const auto it = shapes_.find(name);
  if (it == shapes_.end() || !it->second.second) return whole.clone();
  return CutBlock(whole, shard_->rank(), shard_->size());
}

void FullySharded::Unshard(torch::optim::AdamW& optimizer) {
  // The first group holds everything; the others have nothing to add.
  if (replica_ != nullptr && replica_->rank() != 0) return;
  OptimizerStateMap& states = optimizer.state();
  std::vector<int64_t> has;
  root_->AppendHasState(states, &has);
  for (const auto& layer : layers_) layer->AppendHasState(states, &has);
  // Every member must gather the same moments, or the collectives would not line up.
  Tensor agreed = torch::tensor(has, torch::kInt64);
  shard_->AllReduceSum(agreed);
  TORCH_CHECK(torch::equal(agreed, torch::tensor(has, torch::kInt64) * shard_->size()),
              "the ranks of a shard group disagree on which parameters have AdamW state");
  const bool keep = shard_->rank() == 0;
  root_->Unshard(states, keep);
  for (const auto& layer : layers_) layer->Unshard(states, keep);
}

void FullySharded::Reshard(torch::optim::AdamW& optimizer) {
  OptimizerStateMap& states = optimizer.state();
  root_->Reshard(states, device_);
  for (const auto& layer : layers_) layer->Reshard(states, device_);
}

void FullySharded::CountGathered(int64_t bytes) {
  gathered_bytes_ += bytes;
  peak_gathered_bytes_ = std::max(peak_gathered_bytes_, gathered_bytes_);
}

}  // namespace prolong::parallel
