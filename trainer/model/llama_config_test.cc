#include "trainer/model/llama_config.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"

namespace prolong::model {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// Meta's Llama-3.1-8B config.json.
constexpr char kLlama31[] = R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": [128001, 128008, 128009],
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3"
  },
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})";

Json Minimal() {
  return {{"vocab_size", 128},
          {"hidden_size", 64},
          {"intermediate_size", 96},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4}};
}

std::string ErrorOf(const Json& json) {
  const absl::StatusOr<LlamaConfig> config = ParseLlamaConfig(json.dump());
  EXPECT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument)) << json.dump();
  return std::string(config.status().message());
}

TEST(LlamaConfigTest, ParsesLlama31) {
  const absl::StatusOr<LlamaConfig> config = ParseLlamaConfig(kLlama31);
  ASSERT_OK(config);
  EXPECT_EQ(config->vocab_size, 128256);
  EXPECT_EQ(config->hidden_size, 4096);
  EXPECT_EQ(config->intermediate_size, 14336);
  EXPECT_EQ(config->num_hidden_layers, 32);
  EXPECT_EQ(config->num_attention_heads, 32);
  EXPECT_EQ(config->num_key_value_heads, 8);
  EXPECT_EQ(config->head_dim, 128);
  EXPECT_EQ(config->rms_norm_eps, 1e-5);
  EXPECT_EQ(config->rope_theta, 500000.0);
  EXPECT_EQ(config->max_position_embeddings, 131072);
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->bos_token_id, 128000);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(128001, 128008, 128009));
  ASSERT_TRUE(config->rope_scaling.has_value());
  EXPECT_EQ(config->rope_scaling->factor, 8.0);
  EXPECT_EQ(config->rope_scaling->low_freq_factor, 1.0);
  EXPECT_EQ(config->rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(config->rope_scaling->original_max_position_embeddings, 8192);
  // Kept for writing back, not interpreted.
  EXPECT_EQ(config->other_keys.at("pretraining_tp"), "1");
  EXPECT_EQ(config->other_keys.at("use_cache"), "true");
  EXPECT_EQ(config->other_keys.count("torch_dtype"), 0u);
}

TEST(LlamaConfigTest, DefaultsFollowHuggingFace) {
  Json json = Minimal();
  json["some_future_key"] = {{"nested", 1}};
  const absl::StatusOr<LlamaConfig> config = ParseLlamaConfig(json.dump());
  ASSERT_OK(config);
  EXPECT_EQ(config->num_key_value_heads, 4);
  EXPECT_EQ(config->head_dim, 16);
  EXPECT_EQ(config->rms_norm_eps, 1e-6);
  EXPECT_EQ(config->rope_theta, 10000.0);
  EXPECT_FALSE(config->rope_scaling.has_value());
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_EQ(config->initializer_range, 0.02);
  EXPECT_EQ(config->bos_token_id, 1);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(2));
  EXPECT_EQ(config->other_keys.at("some_future_key"), R"({"nested":1})");

  json["head_dim"] = 32;  // need not be hidden_size / heads
  json["eos_token_id"] = 7;
  json["bos_token_id"] = nullptr;
  json["tie_word_embeddings"] = true;
  json["rope_theta"] = 8000000;  // an integer in JSON
  const absl::StatusOr<LlamaConfig> explicit_config = ParseLlamaConfig(json.dump());
  ASSERT_OK(explicit_config);
  EXPECT_EQ(explicit_config->head_dim, 32);
  EXPECT_THAT(explicit_config->eos_token_ids, ElementsAre(7));
  EXPECT_FALSE(explicit_config->bos_token_id.has_value());
  EXPECT_TRUE(explicit_config->tie_word_embeddings);
  EXPECT_EQ(explicit_config->rope_theta, 8e6);
}

TEST(LlamaConfigTest, ErrorsNameTheKey) {
  Json json = Minimal();
  json["num_attention_heads"] = 32;
  json["hidden_size"] = 4096;
  json["num_key_value_heads"] = 5;
  EXPECT_EQ(ErrorOf(json),
            "config.json: num_attention_heads (32) must be a multiple of num_key_value_heads (5)");

  const std::vector<std::pair<std::function<void(Json&)>, std::string>> cases = {
      {[](Json& j) { j.erase("hidden_size"); }, "config.json: hidden_size is required"},
      {[](Json& j) { j["hidden_size"] = "big"; },
       "config.json: hidden_size must be an integer, got \"big\""},
      {[](Json& j) { j["num_hidden_layers"] = 2.5; }, "num_hidden_layers must be an integer"},
      {[](Json& j) { j["vocab_size"] = 0; }, "config.json: vocab_size must be positive, got 0"},
      {[](Json& j) { j["num_key_value_heads"] = -1; }, "num_key_value_heads must be positive"},
      {[](Json& j) { j["hidden_size"] = 66; },
       "hidden_size (66) must be a multiple of num_attention_heads (4) when head_dim is not given"},
      {[](Json& j) { j["head_dim"] = 15; }, "head_dim (15) must be even"},
      {[](Json& j) { j["rms_norm_eps"] = 0; }, "rms_norm_eps must be positive"},
      {[](Json& j) { j["rope_theta"] = -1; }, "rope_theta must be positive"},
      {[](Json& j) { j["rope_theta"] = "big"; }, "rope_theta must be a number"},
      {[](Json& j) { j["tie_word_embeddings"] = 1; }, "tie_word_embeddings must be true or false"},
      {[](Json& j) {
         j["eos_token_id"] = {1, "x"};
       },
       "eos_token_id must be an integer or a list of integers"},
      {[](Json& j) { j["eos_token_id"] = 128; }, "eos_token_id (128) must be in [0, vocab_size"},
      {[](Json& j) { j["bos_token_id"] = -3; }, "bos_token_id (-3) must be in [0, vocab_size"},
      {[](Json& j) { j["model_type"] = "mistral"; },
       "model_type \"mistral\" is not supported (expected \"llama\")"},
      {[](Json& j) { j["hidden_act"] = "gelu"; }, "hidden_act \"gelu\" is not supported"},
      {[](Json& j) { j["attention_bias"] = true; }, "attention_bias true is not supported"},
      {[](Json& j) { j["mlp_bias"] = true; }, "mlp_bias true is not supported"},
      {[](Json& j) { j["attention_dropout"] = 0.1; }, "attention_dropout (0.1) is not supported"},
      {[](Json& j) {
         j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
       },
       "config.json: rope_scaling.rope_type \"linear\" is not supported (only \"llama3\" and "
       "\"default\" are)"},
      {[](Json& j) {
         j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
       },
       "rope_scaling.rope_type \"yarn\" is not supported"},
      {[](Json& j) {
         j["rope_scaling"] = {{"factor", 4.0}};
       },
       "rope_scaling.rope_type is required"},
      {[](Json& j) { j["rope_scaling"] = 3; }, "rope_scaling must be an object or null"},
      {[](Json& j) {
         j["rope_scaling"] = {{"rope_type", "llama3"},
                              {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 8192}};
       },
       "config.json: rope_scaling.factor is required"},
      {[](Json& j) {
         j["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", 8.0},
                              {"low_freq_factor", 4.0},
                              {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 8192}};
       },
       "rope_scaling.high_freq_factor (4) must be greater than rope_scaling.low_freq_factor (4)"},
  };
  for (const auto& [mutate, expected] : cases) {
    Json j = Minimal();
    mutate(j);
    EXPECT_THAT(ErrorOf(j), HasSubstr(expected));
  }
  EXPECT_THAT(std::string(ParseLlamaConfig("{").status().message()),
              HasSubstr("config.json: not valid JSON"));
  EXPECT_THAT(std::string(ParseLlamaConfig("[1]").status().message()),
              HasSubstr("config.json: not a JSON object"));
}

TEST(LlamaConfigTest, RopeScalingVariants) {
  Json json = Minimal();
  json["rope_scaling"] = nullptr;
  EXPECT_FALSE(ParseLlamaConfig(json.dump())->rope_scaling.has_value());
  json["rope_scaling"] = {{"rope_type", "default"}};
  EXPECT_FALSE(ParseLlamaConfig(json.dump())->rope_scaling.has_value());
  // Older configs name the type "type".
  json["rope_scaling"] = {{"type", "llama3"},
                          {"factor", 32.0},
                          {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  const absl::StatusOr<LlamaConfig> config = ParseLlamaConfig(json.dump());
  ASSERT_OK(config);
  ASSERT_TRUE(config->rope_scaling.has_value());
  EXPECT_EQ(config->rope_scaling->factor, 32.0);

  // transformers 5: one rope_parameters object holds theta and the scaling.
  Json v5 = Minimal();
  v5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  absl::StatusOr<LlamaConfig> parsed = ParseLlamaConfig(v5.dump());
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->rope_theta, 500000.0);
  EXPECT_FALSE(parsed->rope_scaling.has_value());
  v5["rope_parameters"] = {{"rope_type", "llama3"},   {"rope_theta", 500000.0},
                           {"factor", 8.0},           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  parsed = ParseLlamaConfig(v5.dump());
  ASSERT_OK(parsed);
  ASSERT_TRUE(parsed->rope_scaling.has_value());
  EXPECT_EQ(parsed->rope_scaling->factor, 8.0);
}

TEST(LlamaConfigTest, WritesWhatTransformersLoadsAndReadsItBack) {
  const absl::StatusOr<LlamaConfig> config = ParseLlamaConfig(kLlama31);
  ASSERT_OK(config);
  const Json written = Json::parse(LlamaConfigToJson(*config, "bfloat16"));
  EXPECT_EQ(written["architectures"], Json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(written["model_type"], "llama");
  EXPECT_EQ(written["torch_dtype"], "bfloat16");
  EXPECT_EQ(written["hidden_act"], "silu");
  EXPECT_EQ(written["num_key_value_heads"], 8);
  EXPECT_EQ(written["head_dim"], 128);
  EXPECT_EQ(written["rope_theta"], 500000.0);
  EXPECT_EQ(written["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(written["rope_scaling"]["original_max_position_embeddings"], 8192);
  EXPECT_EQ(written["eos_token_id"], Json::array({128001, 128008, 128009}));
  EXPECT_EQ(written["transformers_version"], "4.43.0.dev0");
  EXPECT_EQ(written["use_cache"], true);

  const std::string path = testing::MakeTempDir() + "/config.json";
  ASSERT_OK(WriteLlamaConfig(path, *config));
  const absl::StatusOr<LlamaConfig> read = ReadLlamaConfig(path);
  ASSERT_OK(read);
  EXPECT_EQ(*read, *config);

  LlamaConfig single = *config;
  single.eos_token_ids = {128001};
  single.rope_scaling.reset();
  single.tie_word_embeddings = true;
  const Json single_json = Json::parse(LlamaConfigToJson(single));
  EXPECT_EQ(single_json["eos_token_id"], 128001);
  EXPECT_TRUE(single_json["rope_scaling"].is_null());
  EXPECT_EQ(single_json["torch_dtype"], "float32");
  EXPECT_EQ(*ParseLlamaConfig(single_json.dump()), single);
}

TEST(LlamaConfigTest, ReadErrorsNameThePath) {
  const std::string dir = testing::MakeTempDir();
  EXPECT_THAT(ReadLlamaConfig(dir + "/absent.json"), StatusIs(absl::StatusCode::kNotFound));
  LlamaConfig config;
  config.num_key_value_heads = 5;
  ASSERT_OK(WriteLlamaConfig(dir + "/config.json", config));
  EXPECT_EQ(ReadLlamaConfig(dir + "/config.json").status().message(),
            dir +
                "/config.json: num_attention_heads (32) must be a multiple of "
                "num_key_value_heads (5)");
}

}  // namespace
}  // namespace prolong::model
