#include "trainer/train/memory_plan.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace prolong::train {
namespace {

using parallel::ActivationCheckpointing;

constexpr int64_t kFloat = 4;

// A parameter's rows (its first dimension) and the elements of a row.
struct Shape {
  int64_t rows;
  int64_t row_elements;
};

std::vector<Shape> LayerShapes(const model::LlamaConfig& c) {
  const int64_t h = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, i = c.intermediate_size;
  return {{q, h}, {kv, h}, {kv, h}, {h, q},  // q, k, v, o projections
          {i, h}, {i, h},  {h, i},           // gate, up, down
          {h, 1}, {h, 1}};                   // the two norms
}

std::vector<Shape> RootShapes(const model::LlamaConfig& c) {
  std::vector<Shape> shapes = {{c.vocab_size, c.hidden_size}, {c.hidden_size, 1}};
  if (!c.tie_word_embeddings) shapes.push_back({c.vocab_size, c.hidden_size});
  return shapes;
}

// Elements of the shapes, whole or as one of `ranks` shards (rows padded to a multiple).
int64_t Elements(const std::vector<Shape>& shapes, int ranks) {
  int64_t elements = 0;
  for (const Shape& s : shapes) elements += (s.rows + ranks - 1) / ranks * s.row_elements;
  return elements;
}

}  // namespace

absl::StatusOr<MemoryPlan> PlanMemory(const model::LlamaConfig& config,
                                      const MemoryLayout& layout) {
  const parallel::ParallelPlan& plan = layout.plan;
  if (layout.world_size < 1 || layout.cp_size < 1 || layout.world_size % layout.cp_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cp_size: ", layout.cp_size, " must divide the world of ", layout.world_size, " ranks"));
  }
  if (layout.seq_len < 1 || layout.seq_len % (2 * layout.cp_size) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "seq_len: ", layout.seq_len,
        " must be positive and split into 2 x cp = ", 2 * layout.cp_size, " equal chunks"));
  }
  if (layout.micro_batch_sequences < 1 || layout.micro_batches < 1 || layout.logit_block_size < 1) {
    return absl::InvalidArgumentError(
        "micro_batch_sequences, micro_batches and logit_block_size: must be at least 1");
  }
  if (plan.activation_checkpointing == ActivationCheckpointing::kAuto ||
      plan.precision == parallel::Precision::kAuto) {
    return absl::InvalidArgumentError("plan: resolve its automatic choices first (ResolveAuto)");
  }
  if (absl::Status status = parallel::CheckWeightSharding(plan, layout.world_size); !status.ok()) {
    return status;
  }

  const model::LlamaConfig& c = config;
  const int64_t layers = c.num_hidden_layers, h = c.hidden_size, i = c.intermediate_size,
                heads = c.num_attention_heads, q = heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, vocab = c.vocab_size;
  const std::vector<Shape> layer = LayerShapes(c), root = RootShapes(c);
  const int shard = !plan.shard_weights         ? 1
                    : plan.shard_group_size > 0 ? plan.shard_group_size
                                                : layout.world_size;
  MemoryPlan out;
  out.parameters = layers * Elements(layer, 1) + Elements(root, 1);
  const int64_t held = layers * Elements(layer, shard) + Elements(root, shard);
  out.weights = kFloat * held;
  out.gradients = kFloat * held;
  // ZeRO-1 divides the moments alone (sharded weights divided them with everything else).
  const int optimizer_ranks =
      !plan.shard_weights && plan.shard_optimizer_state ? layout.world_size : 1;
  out.optimizer_state = 2 * kFloat * held / optimizer_ranks;
  // With sharded weights, whole weights beside the shards: in forward the root's, for the
  // micro-batch; in backward also its whole gradients, and a layer's weights and its autograd
  // gradients (matrices in bfloat16 under mixed precision), their float32 zero-padded copies and
  // the concatenation reduce-scattered, with the next layer's weights arriving.
  const bool bf16 = plan.precision == parallel::Precision::kBf16;
  int64_t layer_gathered_bytes = 0;
  for (const Shape& s : layer) {
    layer_gathered_bytes += s.rows * s.row_elements * (bf16 && s.row_elements > 1 ? 2 : kFloat);
  }
  const int64_t gathered_forward = plan.shard_weights ? kFloat * Elements(root, 1) : 0;
  const int64_t gathered_layer =
      plan.shard_weights ? 3 * layer_gathered_bytes + 2 * kFloat * Elements(layer, 1) : 0;
  out.gathered_weights = 2 * gathered_forward + gathered_layer;

  const int64_t t = layout.micro_batch_sequences * layout.seq_len / layout.cp_size;
  out.tokens = t;
  // Matrix products' outputs: bfloat16 under mixed precision; the residual stream, the norms
  // and the log-sum-exps stay float32.
  const int64_t p = bf16 ? 2 : kFloat;
  // A norm's output as the projections after it save it: once in float32, or cast to bfloat16
  // by autocast for each of them (activations are cast per use, not cached).
  const auto norm_output = [&](int64_t uses) { return bf16 ? uses * p * h : kFloat * h; };
  // A norm's own saved tensors: its scale per token, and in the CPU code its normalized rows
  // (the GPU's fused RMSNorm keeps its input, saved anyway, and the scale).
  const int64_t norm_saved = kFloat + (layout.gpu ? 0 : kFloat * h);
  // Per token, the tensors one layer's forward saves for its backward (llama.cc): the input
  // (made float32 again from a bfloat16 copy under mixed precision); the input norm's; q and k
  // before rotation, rotated and after; v; attention's output and log-sum-exp; the residual
  // after attention; the second norm's; gate, its SiLU, up and their product; the output.
  const int64_t saved_per_token = (bf16 ? kFloat * h : 0) + norm_saved + norm_output(3) +
                                  p * (3 * q + 3 * kv + kv + q) + kFloat * heads + kFloat * h +
                                  norm_saved + norm_output(2) + p * 4 * i + kFloat * h;
  // Backward through it, besides: the output's gradient, and one MLP-wide gradient at a time
  // (autograd frees each node's saved tensors once the node has run).
  const int64_t backward_per_token = kFloat * h + p * i;
  // The final norm's input, normalized rows and output (the loss's input), the loss's
  // log-sum-exp, mask and targets, and the batch's ids, targets, mask and layout.
  const int64_t head_per_token = kFloat * (3 * h + 3) + 8 * 2 + 8 * 5;
  const bool checkpointed = plan.activation_checkpointing != ActivationCheckpointing::kOff;
  int64_t kept_per_token = head_per_token;
  if (checkpointed) {
    kept_per_token += layers * p * h;  // each layer's input, bfloat16 under mixed precision
    if (plan.activation_checkpointing == ActivationCheckpointing::kSelective) {
      kept_per_token += layers * (p * q + kFloat * heads);
    }
    out.layer_working_set = t * (saved_per_token + backward_per_token);
  } else {
    // Each layer's output is the next one's input: counted once.
    kept_per_token += kFloat * h + layers * (saved_per_token - (bf16 ? 2 : 1) * kFloat * h);
    out.layer_working_set = t * backward_per_token;
  }
  out.kept_activations = t * kept_per_token;

  // Forward: a block's logits and logsumexp's temporary of their size. Backward: a block's
  // logits turned into their gradient, lm_head's float32 weight gradient, the hidden rows'
  // gradient.
  const int64_t block = std::min(layout.logit_block_size, t);
  const int64_t loss_forward = 2 * kFloat * block * vocab;
  const int64_t loss_backward = kFloat * (block * vocab + vocab * h + t * h + block * h);
  out.loss_blocks = std::max(loss_forward, loss_backward);

  const int64_t resident = out.weights + out.optimizer_state + out.kept_activations;
  // Gradients exist in forward once an earlier micro-batch of the step has made them.
  out.forward_peak =
      resident + (layout.micro_batches > 1 ? out.gradients : 0) + gathered_forward + loss_forward;
  out.backward_peak = resident + out.gradients + 2 * gathered_forward +
                      std::max(out.layer_working_set + gathered_layer, loss_backward);
  return out;
}

std::string DescribeMemoryPlan(const MemoryPlan& plan, int64_t capacity_bytes) {
  const auto gib = [](int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); };
  std::string out = absl::StrFormat("%.2fB parameters; %d tokens a rank per micro-batch\n",
                                    plan.parameters / 1e9, plan.tokens);
  const std::pair<const char*, int64_t> parts[] = {
      {"weights (float32)", plan.weights},
      {"gradients (float32)", plan.gradients},
      {"optimizer state (AdamW)", plan.optimizer_state},
      {"gathered weights", plan.gathered_weights},
      {"kept activations", plan.kept_activations},
      {"one layer's working set", plan.layer_working_set},
      {"loss blocks", plan.loss_blocks}};
  for (const auto& [name, bytes] : parts) {
    absl::StrAppendFormat(&out, "  %-26s %9.2f GiB\n", name, gib(bytes));
  }
  absl::StrAppendFormat(&out, "  %-26s %9.2f GiB\n", "in the loss's forward",
                        gib(plan.forward_peak));
  absl::StrAppendFormat(&out, "  %-26s %9.2f GiB\n", "in backward", gib(plan.backward_peak));
  absl::StrAppendFormat(&out, "  %-26s %9.2f GiB", "peak per rank", gib(plan.peak()));
  if (capacity_bytes > 0) {
    absl::StrAppendFormat(
        &out, " (%.0f%% of %.2f GiB)",
        100.0 * static_cast<double>(plan.peak()) / static_cast<double>(capacity_bytes),
        gib(capacity_bytes));
  }
  return out + "\n";
}

}  // namespace prolong::train
