#include "trainer/model/hf_checkpoint.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"
#include "trainer/model/llama_config.h"
#include "trainer/model/model_test_util.h"
#include "trainer/model/safetensors.h"

namespace prolong::model {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using torch::Tensor;

SaveOptions Options(int64_t max_shard_bytes, torch::ScalarType dtype = torch::kFloat32) {
  SaveOptions options;
  options.max_shard_bytes = max_shard_bytes;
  options.dtype = dtype;
  return options;
}

TEST(HfCheckpointTest, SavesAndLoadsShardedAndInBfloat16) {
  const LlamaConfig config = testing::TinyLlamaConfig();
  auto model = *CreateLlama(config, 11);
  const std::string dir = prolong::testing::MakeTempDir() + "/sharded";
  ASSERT_OK(SaveLlama(*model, dir, Options(40'000)));
  EXPECT_TRUE(std::filesystem::exists(dir + "/" + safetensors::kIndexFileName));
  EXPECT_FALSE(std::filesystem::exists(dir + "/" + safetensors::kSingleFileName));
  int shards = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!absl::StrContains(entry.path().filename().string(), "-of-")) continue;
    ++shards;
    auto shard = safetensors::SafetensorsFile::Open(entry.path().string());
    ASSERT_OK(shard);
    EXPECT_LE((*shard)->data_bytes(), 40'000);
  }
  EXPECT_GE(shards, 8);

  absl::StatusOr<std::shared_ptr<LlamaForCausalLM>> loaded = LoadLlama(dir);
  ASSERT_OK(loaded);
  EXPECT_EQ((*loaded)->config(), config);
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), (*loaded)->named_parameters()[item.key()]))
        << item.key();
  }

  const std::string bf16_dir = prolong::testing::MakeTempDir() + "/bf16";
  ASSERT_OK(SaveLlama(*model, bf16_dir, Options(int64_t{1} << 30, torch::kBFloat16)));
  EXPECT_EQ(nlohmann::json::parse(*ReadFile(bf16_dir + "/config.json"))["torch_dtype"], "bfloat16");
  auto file = safetensors::SafetensorsFile::Open(bf16_dir + "/model.safetensors");
  ASSERT_OK(file);
  EXPECT_EQ((*file)->Find("model.norm.weight")->dtype, safetensors::DType::kBF16);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  loaded = LoadLlama(bf16_dir);
  ASSERT_OK(loaded);
  for (const auto& item : model->named_parameters()) {
    const Tensor rounded = item.value().to(torch::kBFloat16).to(torch::kFloat32);
    const Tensor& read = (*loaded)->named_parameters()[item.key()];
    EXPECT_EQ(read.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(read, rounded)) << item.key();
  }

  EXPECT_THAT(
      std::string(SaveLlama(*model, dir, Options(int64_t{1} << 30, torch::kInt32)).message()),
      HasSubstr("cannot save a model as Int"));
}

class LoadErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = *CreateLlama(testing::TinyLlamaConfig(), 13);
    for (const auto& item : model_->named_parameters()) {
      tensors_[item.key()] = item.value().detach().clone();
    }
  }

  // Writes `tensors` as a checkpoint and loads it into `model`.
  absl::Status Load(LlamaForCausalLM& model, const std::map<std::string, Tensor>& tensors) {
    std::vector<safetensors::NamedTensor> named;
    for (const auto& [name, tensor] : tensors) named.push_back({name, *ViewOf(tensor)});
    const std::string path = dir_ + "/checkpoint.safetensors";
    EXPECT_OK(safetensors::WriteFile(path, named));
    return LoadWeights(model, path);
  }

  // The model still holds its weights.
  void ExpectUnchanged() {
    for (const auto& item : model_->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), tensors_[item.key()])) << item.key();
    }
  }

  std::shared_ptr<LlamaForCausalLM> model_;
  std::map<std::string, Tensor> tensors_;
  std::string dir_ = prolong::testing::MakeTempDir();
};

TEST_F(LoadErrorsTest, WrongShapeNamesTheTensorAndBothShapes) {
  auto tensors = tensors_;
  tensors["model.layers.1.mlp.up_proj.weight"] = torch::zeros({64, 64});
  const absl::Status status = Load(*model_, tensors);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("tensor model.layers.1.mlp.up_proj.weight (in "),
                                     HasSubstr("has shape [64, 64], the model expects [96, 64]"))));
  ExpectUnchanged();
}

TEST_F(LoadErrorsTest, MissingTensorIsNamed) {
  auto tensors = tensors_;
  tensors.erase("model.layers.0.self_attn.k_proj.weight");
  tensors["model.norm.weight"] = torch::zeros({64});  // would be copied first if not checked
  EXPECT_THAT(std::string(Load(*model_, tensors).message()),
              HasSubstr("missing tensor model.layers.0.self_attn.k_proj.weight"));
  ExpectUnchanged();

  tensors = tensors_;
  tensors.erase("lm_head.weight");
  EXPECT_THAT(std::string(Load(*model_, tensors).message()),
              HasSubstr("missing tensor lm_head.weight (config.json does not tie"));
}

TEST_F(LoadErrorsTest, UnexpectedTensorsAndDTypesAreErrors) {
  auto tensors = tensors_;
  tensors["model.layers.2.mlp.up_proj.weight"] = torch::zeros({96, 64});
  EXPECT_THAT(std::string(Load(*model_, tensors).message()),
              HasSubstr("unexpected tensor model.layers.2.mlp.up_proj.weight"));

  LlamaConfig tied_config = testing::TinyLlamaConfig();
  tied_config.tie_word_embeddings = true;
  LlamaForCausalLM tied(tied_config);
  EXPECT_THAT(std::string(Load(tied, tensors_).message()),
              HasSubstr("unexpected tensor lm_head.weight (in "));
  EXPECT_THAT(std::string(Load(tied, tensors_).message()), HasSubstr("ties word embeddings"));

  tensors = tensors_;
  tensors["model.norm.weight"] = torch::ones({64}, torch::kInt64);
  EXPECT_THAT(std::string(Load(*model_, tensors).message()),
              HasSubstr("tensor model.norm.weight (in "));
  EXPECT_THAT(std::string(Load(*model_, tensors).message()),
              HasSubstr("has dtype I64, not a floating-point dtype"));
  ExpectUnchanged();

  // Older checkpoints carry the derived RoPE buffer; it is not a weight.
  tensors = tensors_;
  tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::ones({8});
  auto other = *CreateLlama(testing::TinyLlamaConfig(), 99);
  EXPECT_OK(Load(*other, tensors));
  for (const auto& item : other->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), tensors_[item.key()])) << item.key();
  }

  EXPECT_THAT(LoadWeights(*model_, dir_ + "/absent"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LoadErrorsTest, ConfigErrorsAreNamed) {
  ASSERT_OK(SaveLlama(*model_, dir_));
  nlohmann::json config = nlohmann::json::parse(*ReadFile(dir_ + "/config.json"));
  config["num_key_value_heads"] = 3;
  ASSERT_OK(WriteFileAtomically(dir_ + "/config.json", config.dump()));
  EXPECT_EQ(LoadLlama(dir_).status().message(),
            dir_ +
                "/config.json: num_attention_heads (4) must be a multiple of "
                "num_key_value_heads (3)");

  config["num_key_value_heads"] = 4;  // valid, but the checkpoint's k_proj is for 2 kv heads
  ASSERT_OK(WriteFileAtomically(dir_ + "/config.json", config.dump()));
  EXPECT_THAT(std::string(LoadLlama(dir_).status().message()),
              HasSubstr("tensor model.layers.0.self_attn.k_proj.weight (in "));
}

}  // namespace
}  // namespace prolong::model
