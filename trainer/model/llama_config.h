// A Llama model's shape and hyperparameters, read from and written to Hugging Face's
// config.json (LlamaConfig), so checkpoints move between this trainer and `transformers`.
#ifndef PROLONG_TRAINER_MODEL_LLAMA_CONFIG_H_
#define PROLONG_TRAINER_MODEL_LLAMA_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::model {

// Llama 3.1's RoPE frequency scaling (rope_scaling with rope_type "llama3"): wavelengths longer
// than original_max_position_embeddings / low_freq_factor are divided by `factor`, those
// shorter than original_max_position_embeddings / high_freq_factor are kept, and those in
// between are interpolated.
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;

  bool operator==(const Llama3RopeScaling& other) const;
};

// Defaults are Hugging Face's LlamaConfig defaults.
struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 128;  // hidden_size / num_attention_heads unless config.json says
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<Llama3RopeScaling> rope_scaling;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;
  std::optional<int64_t> bos_token_id = 1;
  std::vector<int64_t> eos_token_ids = {2};  // config.json's eos_token_id: one id or a list
  std::optional<int64_t> pad_token_id;
  // Keys this library does not interpret, as JSON text, written back unchanged.
  std::map<std::string, std::string> other_keys;

  bool operator==(const LlamaConfig& other) const;
};

// Checks the invariants the model relies on. INVALID_ARGUMENT naming the key, prefixed by
// `source`, e.g. "config.json: num_attention_heads (32) must be a multiple of
// num_key_value_heads (5)".
absl::Status ValidateLlamaConfig(const LlamaConfig& config,
                                 absl::string_view source = "config.json");

// Parses and validates a config.json. vocab_size, hidden_size, intermediate_size,
// num_hidden_layers and num_attention_heads are required; other keys default as in Hugging
// Face. Settings this model does not implement (another model_type, hidden_act other than
// silu, attention or MLP biases, rope_scaling other than "llama3" or "default") are rejected
// rather than ignored. Errors are INVALID_ARGUMENT "SOURCE: KEY ...".
absl::StatusOr<LlamaConfig> ParseLlamaConfig(absl::string_view json,
                                             absl::string_view source = "config.json");
absl::StatusOr<LlamaConfig> ReadLlamaConfig(const std::string& path);

// A config.json that transformers loads as LlamaForCausalLM; `torch_dtype` names the
// checkpoint's dtype ("float32", "bfloat16", "float16").
std::string LlamaConfigToJson(const LlamaConfig& config, absl::string_view torch_dtype = "float32");
// Written atomically.
absl::Status WriteLlamaConfig(const std::string& path, const LlamaConfig& config,
                              absl::string_view torch_dtype = "float32");

}  // namespace prolong::model

#endif  // PROLONG_TRAINER_MODEL_LLAMA_CONFIG_H_
