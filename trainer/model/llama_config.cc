#include "trainer/model/llama_config.h"

#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace prolong::model {
namespace {

using Json = nlohmann::json;

// Keys ParseLlamaConfig interprets or LlamaConfigToJson writes; everything else is carried.
const std::set<std::string>& InterpretedKeys() {
  static const auto* keys = new std::set<std::string>{
      "architectures",
      "attention_bias",
      "attention_dropout",
      "bos_token_id",
      // Newer transformers' name for torch_dtype; the written torch_dtype replaces it.
      "dtype",
      "eos_token_id",
      "head_dim",
      "hidden_act",
      "hidden_size",
      "initializer_range",
      "intermediate_size",
      "max_position_embeddings",
      "mlp_bias",
      "model_type",
      "num_attention_heads",
      "num_hidden_layers",
      "num_key_value_heads",
      "pad_token_id",
      "rms_norm_eps",
      "rope_parameters",
      "rope_scaling",
      "rope_theta",
      "tie_word_embeddings",
      "torch_dtype",
      "vocab_size",
  };
  return *keys;
}

// Reads typed values from one JSON object, naming `prefix` + key in errors.
class Reader {
 public:
  Reader(const Json& object, absl::string_view source, std::string prefix)
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  template <typename... Parts>
  absl::Status Error(absl::string_view key, const Parts&... parts) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": ", prefix_, key, " ", parts...));
  }

  const Json* Find(const std::string& key) const {
    const auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  // Leaves *out unchanged when the key is absent (and not required) or null.
  absl::Status Int(const std::string& key, int64_t* out, bool required = false) const {
    const Json* value = Find(key);
    if (value == nullptr || value->is_null()) {
      return required ? Error(key, "is required") : absl::OkStatus();
    }
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() &&
         value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return Error(key, "must be an integer, got ", value->dump());
    }
    *out = value->get<int64_t>();
    return absl::OkStatus();
  }

  absl::Status OptionalInt(const std::string& key, std::optional<int64_t>* out) const {
    const Json* value = Find(key);
    if (value == nullptr) return absl::OkStatus();
    if (value->is_null()) {
      out->reset();
      return absl::OkStatus();
    }
    if (!value->is_number_integer()) {
      return Error(key, "must be an integer or null, got ", value->dump());
    }
    *out = value->get<int64_t>();
    return absl::OkStatus();
  }

  absl::Status Double(const std::string& key, double* out, bool required = false) const {
    const Json* value = Find(key);
    if (value == nullptr || value->is_null()) {
      return required ? Error(key, "is required") : absl::OkStatus();
    }
    if (!value->is_number()) return Error(key, "must be a number, got ", value->dump());
    *out = value->get<double>();
    return absl::OkStatus();
  }

  absl::Status Bool(const std::string& key, bool* out) const {
    const Json* value = Find(key);
    if (value == nullptr || value->is_null()) return absl::OkStatus();
    if (!value->is_boolean()) return Error(key, "must be true or false, got ", value->dump());
    *out = value->get<bool>();
    return absl::OkStatus();
  }

  absl::Status String(const std::string& key, std::optional<std::string>* out) const {
    const Json* value = Find(key);
    if (value == nullptr || value->is_null()) return absl::OkStatus();
    if (!value->is_string()) return Error(key, "must be a string, got ", value->dump());
    *out = value->get<std::string>();
    return absl::OkStatus();
  }

 private:
  const Json& object_;
  absl::string_view source_;
  std::string prefix_;
};

absl::StatusOr<std::optional<Llama3RopeScaling>> ParseRopeScaling(const Json& value,
                                                                  absl::string_view source) {
  if (value.is_null()) return std::nullopt;
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": rope_scaling must be an object or null, got ", value.dump()));
  }
  const Reader reader(value, source, "rope_scaling.");
  // Older configs say "type".
  std::optional<std::string> type;
  RETURN_IF_ERROR(reader.String("rope_type", &type));
  if (!type.has_value()) RETURN_IF_ERROR(reader.String("type", &type));
  if (!type.has_value()) return reader.Error("rope_type", "is required");
  if (*type == "default") return std::nullopt;
  if (*type != "llama3") {
    return reader.Error("rope_type", "\"", *type,
                        "\" is not supported (only \"llama3\" and \"default\" are)");
  }
  Llama3RopeScaling scaling;
  RETURN_IF_ERROR(reader.Double("factor", &scaling.factor, /*required=*/true));
  RETURN_IF_ERROR(reader.Double("low_freq_factor", &scaling.low_freq_factor, /*required=*/true));
  RETURN_IF_ERROR(reader.Double("high_freq_factor", &scaling.high_freq_factor, /*required=*/true));
  RETURN_IF_ERROR(reader.Int("original_max_position_embeddings",
                             &scaling.original_max_position_embeddings, /*required=*/true));
  return scaling;
}

bool PositiveFinite(double x) { return std::isfinite(x) && x > 0; }

}  // namespace

bool Llama3RopeScaling::operator==(const Llama3RopeScaling& other) const {
  return std::tie(factor, low_freq_factor, high_freq_factor, original_max_position_embeddings) ==
         std::tie(other.factor, other.low_freq_factor, other.high_freq_factor,
                  other.original_max_position_embeddings);
}

bool LlamaConfig::operator==(const LlamaConfig& o) const {
  return std::tie(vocab_size, hidden_size, intermediate_size, num_hidden_layers,
                  num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps, rope_theta,
                  rope_scaling, max_position_embeddings, tie_word_embeddings, initializer_range,
                  bos_token_id, eos_token_ids, pad_token_id, other_keys) ==
         std::tie(o.vocab_size, o.hidden_size, o.intermediate_size, o.num_hidden_layers,
                  o.num_attention_heads, o.num_key_value_heads, o.head_dim, o.rms_norm_eps,
                  o.rope_theta, o.rope_scaling, o.max_position_embeddings, o.tie_word_embeddings,
                  o.initializer_range, o.bos_token_id, o.eos_token_ids, o.pad_token_id,
                  o.other_keys);
}

absl::Status ValidateLlamaConfig(const LlamaConfig& c, absl::string_view source) {
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", parts...));
  };
  const std::pair<const char*, int64_t> positive[] = {
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
  };
  for (const auto& [key, value] : positive) {
    if (value <= 0) return error(key, " must be positive, got ", value);
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return error("num_attention_heads (", c.num_attention_heads,
                 ") must be a multiple of num_key_value_heads (", c.num_key_value_heads, ")");
  }
  if (c.head_dim % 2 != 0) {
    return error("head_dim (", c.head_dim, ") must be even: RoPE rotates pairs of dimensions");
  }
  if (!PositiveFinite(c.rms_norm_eps)) {
    return error("rms_norm_eps must be positive, got ", c.rms_norm_eps);
  }
  if (!PositiveFinite(c.rope_theta)) {
    return error("rope_theta must be positive, got ", c.rope_theta);
  }
  if (!std::isfinite(c.initializer_range) || c.initializer_range < 0) {
    return error("initializer_range must be non-negative, got ", c.initializer_range);
  }
  if (c.rope_scaling.has_value()) {
    const Llama3RopeScaling& s = *c.rope_scaling;
    if (!PositiveFinite(s.factor)) {
      return error("rope_scaling.factor must be positive, got ", s.factor);
    }
    if (!PositiveFinite(s.low_freq_factor)) {
      return error("rope_scaling.low_freq_factor must be positive, got ", s.low_freq_factor);
    }
    if (!std::isfinite(s.high_freq_factor) || s.high_freq_factor <= s.low_freq_factor) {
      return error("rope_scaling.high_freq_factor (", s.high_freq_factor,
                   ") must be greater than rope_scaling.low_freq_factor (", s.low_freq_factor, ")");
    }
    if (s.original_max_position_embeddings <= 0) {
      return error("rope_scaling.original_max_position_embeddings must be positive, got ",
                   s.original_max_position_embeddings);
    }
  }
  auto check_token = [&](const char* key, int64_t id) -> absl::Status {
    if (id < 0 || id >= c.vocab_size) {
      return error(key, " (", id, ") must be in [0, vocab_size = ", c.vocab_size, ")");
    }
    return absl::OkStatus();
  };
  if (c.bos_token_id.has_value()) RETURN_IF_ERROR(check_token("bos_token_id", *c.bos_token_id));
  for (const int64_t id : c.eos_token_ids) RETURN_IF_ERROR(check_token("eos_token_id", id));
  for (const auto& [key, json] : c.other_keys) {
    if (InterpretedKeys().count(key) != 0) {
      return error(key, " is a field of the config, not an other key");
    }
    if (!Json::accept(json)) return error(key, ": other key's value is not JSON: ", json);
  }
  return absl::OkStatus();
}

absl::StatusOr<LlamaConfig> ParseLlamaConfig(absl::string_view text, absl::string_view source) {
  Json json;
  try {
    json = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON: ", e.what()));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a JSON object"));
  }
  const Reader reader(json, source, "");
  LlamaConfig c;

  std::optional<std::string> model_type;
  RETURN_IF_ERROR(reader.String("model_type", &model_type));
  if (model_type.has_value() && *model_type != "llama") {
    return reader.Error("model_type", "\"", *model_type,
                        "\" is not supported (expected \"llama\")");
  }
  std::optional<std::string> hidden_act;
  RETURN_IF_ERROR(reader.String("hidden_act", &hidden_act));
  if (hidden_act.has_value() && *hidden_act != "silu") {
    return reader.Error("hidden_act", "\"", *hidden_act, "\" is not supported (only \"silu\")");
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    bool bias = false;
    RETURN_IF_ERROR(reader.Bool(key, &bias));
    if (bias) return reader.Error(key, "true is not supported (projections have no bias)");
  }
  double attention_dropout = 0;
  RETURN_IF_ERROR(reader.Double("attention_dropout", &attention_dropout));
  if (attention_dropout != 0) {
    return reader.Error("attention_dropout", "(", attention_dropout,
                        ") is not supported (must be 0)");
  }

  RETURN_IF_ERROR(reader.Int("vocab_size", &c.vocab_size, /*required=*/true));
  RETURN_IF_ERROR(reader.Int("hidden_size", &c.hidden_size, /*required=*/true));
  RETURN_IF_ERROR(reader.Int("intermediate_size", &c.intermediate_size, /*required=*/true));
  RETURN_IF_ERROR(reader.Int("num_hidden_layers", &c.num_hidden_layers, /*required=*/true));
  RETURN_IF_ERROR(reader.Int("num_attention_heads", &c.num_attention_heads, /*required=*/true));
  c.num_key_value_heads = c.num_attention_heads;
  RETURN_IF_ERROR(reader.Int("num_key_value_heads", &c.num_key_value_heads));
  const Json* head_dim = reader.Find("head_dim");
  if (head_dim != nullptr && !head_dim->is_null()) {
    RETURN_IF_ERROR(reader.Int("head_dim", &c.head_dim));
  } else {
    if (c.num_attention_heads <= 0) {
      return reader.Error("num_attention_heads", "must be positive, got ", c.num_attention_heads);
    }
    if (c.hidden_size % c.num_attention_heads != 0) {
      return reader.Error("hidden_size", "(", c.hidden_size,
                          ") must be a multiple of num_attention_heads (", c.num_attention_heads,
                          ") when head_dim is not given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  RETURN_IF_ERROR(reader.Double("rms_norm_eps", &c.rms_norm_eps));
  RETURN_IF_ERROR(reader.Double("rope_theta", &c.rope_theta));
  if (const Json* scaling = reader.Find("rope_scaling"); scaling != nullptr) {
    ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(*scaling, source));
  }
  // transformers 5 writes theta and scaling as one object.
  if (const Json* parameters = reader.Find("rope_parameters");
      parameters != nullptr && parameters->is_object()) {
    RETURN_IF_ERROR(
        Reader(*parameters, source, "rope_parameters.").Double("rope_theta", &c.rope_theta));
    ASSIGN_OR_RETURN(c.rope_scaling, ParseRopeScaling(*parameters, source));
  }
  RETURN_IF_ERROR(reader.Int("max_position_embeddings", &c.max_position_embeddings));
  RETURN_IF_ERROR(reader.Bool("tie_word_embeddings", &c.tie_word_embeddings));
  RETURN_IF_ERROR(reader.Double("initializer_range", &c.initializer_range));
  RETURN_IF_ERROR(reader.OptionalInt("bos_token_id", &c.bos_token_id));
  RETURN_IF_ERROR(reader.OptionalInt("pad_token_id", &c.pad_token_id));
  if (const Json* eos = reader.Find("eos_token_id"); eos != nullptr) {
    c.eos_token_ids.clear();
    if (eos->is_number_integer()) {
      c.eos_token_ids.push_back(eos->get<int64_t>());
    } else if (eos->is_array()) {
      for (const Json& id : *eos) {
        if (!id.is_number_integer()) {
          return reader.Error("eos_token_id", "must be an integer or a list of integers, got ",
                              eos->dump());
        }
        c.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else if (!eos->is_null()) {
      return reader.Error("eos_token_id", "must be an integer or a list of integers, got ",
                          eos->dump());
    }
  }
  for (const auto& [key, value] : json.items()) {
    if (InterpretedKeys().count(key) == 0) c.other_keys[key] = value.dump();
  }
  RETURN_IF_ERROR(ValidateLlamaConfig(c, source));
  return c;
}

absl::StatusOr<LlamaConfig> ReadLlamaConfig(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  return ParseLlamaConfig(text, path);
}

std::string LlamaConfigToJson(const LlamaConfig& c, absl::string_view torch_dtype) {
  Json json = Json::object();
  for (const auto& [key, value] : c.other_keys) {
    json[key] = Json::parse(value, nullptr, /*allow_exceptions=*/false);
  }
  json["architectures"] = {"LlamaForCausalLM"};
  json["model_type"] = "llama";
  json["torch_dtype"] = std::string(torch_dtype);
  json["attention_bias"] = false;
  json["attention_dropout"] = 0.0;
  json["mlp_bias"] = false;
  json["hidden_act"] = "silu";
  json["vocab_size"] = c.vocab_size;
  json["hidden_size"] = c.hidden_size;
  json["intermediate_size"] = c.intermediate_size;
  json["num_hidden_layers"] = c.num_hidden_layers;
  json["num_attention_heads"] = c.num_attention_heads;
  json["num_key_value_heads"] = c.num_key_value_heads;
  json["head_dim"] = c.head_dim;
  json["rms_norm_eps"] = c.rms_norm_eps;
  json["rope_theta"] = c.rope_theta;
  if (c.rope_scaling.has_value()) {
    json["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", c.rope_scaling->factor},
        {"low_freq_factor", c.rope_scaling->low_freq_factor},
        {"high_freq_factor", c.rope_scaling->high_freq_factor},
        {"original_max_position_embeddings", c.rope_scaling->original_max_position_embeddings},
    };
  } else {
    json["rope_scaling"] = nullptr;
  }
  json["max_position_embeddings"] = c.max_position_embeddings;
  json["tie_word_embeddings"] = c.tie_word_embeddings;
  json["initializer_range"] = c.initializer_range;
  json["bos_token_id"] = c.bos_token_id.has_value() ? Json(*c.bos_token_id) : Json(nullptr);
  if (c.eos_token_ids.empty()) {
    json["eos_token_id"] = nullptr;
  } else if (c.eos_token_ids.size() == 1) {
    json["eos_token_id"] = c.eos_token_ids[0];
  } else {
    json["eos_token_id"] = c.eos_token_ids;
  }
  json["pad_token_id"] = c.pad_token_id.has_value() ? Json(*c.pad_token_id) : Json(nullptr);
  return json.dump(2) + "\n";
}

absl::Status WriteLlamaConfig(const std::string& path, const LlamaConfig& config,
                              absl::string_view torch_dtype) {
  return WriteFileAtomically(path, LlamaConfigToJson(config, torch_dtype));
}

}  // namespace prolong::model
