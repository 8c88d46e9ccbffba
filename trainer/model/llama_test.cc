#include "trainer/model/llama.h"

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ATen/CPUGeneratorImpl.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"
#include "torch/utils.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama_config.h"
#include "trainer/model/safetensors.h"

namespace prolong::model {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using torch::Tensor;

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kReference[] = "trainer/model/testdata/llama_reference.py";

LlamaConfig TinyConfig() {
  LlamaConfig c;
  c.vocab_size = 128;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000;
  c.max_position_embeddings = 4096;
  // Larger than Hugging Face's 0.02 so that attention is peaked and every weight shows in the
  // logits; a comparison of near-uniform attention would hide RoPE and masking errors.
  c.initializer_range = 0.15;
  c.bos_token_id = 0;
  c.eos_token_ids = {1};
  return c;
}

// Norm weights away from 1 too, so that a norm applied with the wrong weight shows.
std::shared_ptr<LlamaForCausalLM> TinyModel(const LlamaConfig& config, uint64_t seed) {
  absl::StatusOr<std::shared_ptr<LlamaForCausalLM>> model = CreateLlama(config, seed);
  EXPECT_OK(model);
  torch::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed + 1000);
  for (auto& item : (*model)->named_parameters()) {
    if (absl::EndsWith(item.key(), "norm.weight")) {
      item.value().copy_(1 + 0.3 * torch::randn(item.value().sizes(), generator));
    }
  }
  return *model;
}

struct Sequence {
  std::vector<int64_t> tokens;
  std::vector<int64_t> positions;
};

Sequence RandomSequence(int64_t length, int64_t first_position, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  Sequence s;
  for (int64_t i = 0; i < length; ++i) {
    s.tokens.push_back(std::uniform_int_distribution<int64_t>(0, vocab - 1)(rng));
    s.positions.push_back(first_position + i);
  }
  return s;
}

// The sequences packed: document i is sequence i, with its own positions.
struct Packed {
  Tensor input_ids;
  attention::TokenLayout layout;
};

SaveOptions Options(int64_t max_shard_bytes, torch::ScalarType dtype = torch::kFloat32) {
  SaveOptions options;
  options.max_shard_bytes = max_shard_bytes;
  options.dtype = dtype;
  return options;
}

Llama3RopeScaling Scaling(int64_t original_max_position_embeddings) {
  Llama3RopeScaling scaling;
  scaling.factor = 8.0;
  scaling.low_freq_factor = 1.0;
  scaling.high_freq_factor = 4.0;
  scaling.original_max_position_embeddings = original_max_position_embeddings;
  return scaling;
}

Packed Pack(const std::vector<Sequence>& sequences) {
  std::vector<int64_t> ids, documents, positions;
  for (size_t d = 0; d < sequences.size(); ++d) {
    ids.insert(ids.end(), sequences[d].tokens.begin(), sequences[d].tokens.end());
    positions.insert(positions.end(), sequences[d].positions.begin(), sequences[d].positions.end());
    documents.insert(documents.end(), sequences[d].tokens.size(), static_cast<int64_t>(d));
  }
  auto tensor = [](const std::vector<int64_t>& v) {
    return torch::tensor(torch::ArrayRef<int64_t>(v), torch::kInt64);
  };
  return {tensor(ids), {tensor(documents), tensor(positions)}};
}

// max |actual - expected| / max |expected|.
double RelativeError(const Tensor& actual, const Tensor& expected) {
  const Tensor a = actual.detach().to(torch::kFloat64);
  const Tensor e = expected.detach().to(torch::kFloat64);
  return (a - e).abs().max().item<double>() / e.abs().max().item<double>();
}

// Runs the Python reference on the model saved in `dir`. Returns its outputs by name.
std::map<std::string, Tensor> RunReference(const std::string& dir,
                                           const std::vector<Sequence>& sequences,
                                           const std::vector<int64_t>& targets) {
  nlohmann::json inputs;
  for (const Sequence& s : sequences) {
    inputs["sequences"].push_back({{"tokens", s.tokens}, {"positions", s.positions}});
  }
  if (!targets.empty()) inputs["targets"] = targets;
  const std::string work = testing::MakeTempDir();
  EXPECT_OK(WriteFileAtomically(work + "/inputs.json", inputs.dump()));
  absl::StatusOr<testing::RunResult> run =
      testing::Run({kPython, kReference, dir, work + "/inputs.json", work + "/out.safetensors"},
                   absl::Seconds(120));
  EXPECT_OK(run);
  EXPECT_EQ(run->exit_code, 0) << run->stderr_text;
  std::map<std::string, Tensor> outputs;
  absl::StatusOr<std::unique_ptr<safetensors::SafetensorsFile>> file =
      safetensors::SafetensorsFile::Open(work + "/out.safetensors");
  EXPECT_OK(file);
  if (!file.ok()) return outputs;
  for (const std::string& name : (*file)->names()) {
    outputs[name] = *ToTorch(*(*file)->Find(name));
  }
  return outputs;
}

// Mean cross-entropy computed from logits in two blocks, as the training loss will.
Tensor BlockedLoss(const LlamaForCausalLM& model, const Tensor& hidden,
                   const std::vector<int64_t>& targets, int64_t split) {
  const Tensor labels = torch::tensor(torch::ArrayRef<int64_t>(targets), torch::kInt64);
  Tensor total = torch::zeros({}, torch::kFloat32);
  const int64_t tokens = hidden.size(0);
  for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, split}, {split, tokens}}) {
    const Tensor log_probs = model.Logits(hidden, begin, end).log_softmax(-1);
    total = total - log_probs.gather(1, labels.slice(0, begin, end).unsqueeze(1)).sum();
  }
  return total / tokens;
}

// The model against the Python reference on packed documents: logits, loss and every
// parameter's gradient.
void ExpectMatchesReference(const LlamaConfig& config, const std::vector<Sequence>& sequences,
                            int64_t max_shard_bytes) {
  auto model = TinyModel(config, 17);
  const std::string dir = testing::MakeTempDir() + "/model";
  ASSERT_OK(SaveLlama(*model, dir, Options(max_shard_bytes)));

  const Packed packed = Pack(sequences);
  const int64_t tokens = packed.input_ids.size(0);
  std::vector<int64_t> targets;
  std::mt19937 rng(5);
  for (int64_t i = 0; i < tokens; ++i) {
    targets.push_back(std::uniform_int_distribution<int64_t>(0, config.vocab_size - 1)(rng));
  }
  std::map<std::string, Tensor> reference = RunReference(dir, sequences, targets);
  ASSERT_EQ(reference.count("logits"), 1u);

  const Tensor hidden = model->forward(packed.input_ids, packed.layout);
  ASSERT_EQ(hidden.sizes(), (std::vector<int64_t>{tokens, config.hidden_size}));
  const Tensor logits = model->Logits(hidden, 0, tokens);
  EXPECT_LT(RelativeError(logits, reference["logits"]), 1e-4);

  const Tensor loss = BlockedLoss(*model, hidden, targets, tokens / 3);
  EXPECT_LT(RelativeError(loss, reference["loss"]), 1e-5);
  loss.backward();
  const auto parameters = model->named_parameters();
  EXPECT_EQ(parameters.size() + 1 + 1, reference.size());  // + logits, loss
  for (const auto& item : parameters) {
    const Tensor& expected = reference["grad." + item.key()];
    ASSERT_TRUE(expected.defined()) << item.key();
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_LT(RelativeError(item.value().grad(), expected), 1e-4) << item.key();
  }
}

TEST(LlamaTest, UntiedGqaMatchesReferenceLogitsAndGradients) {
  // Three documents packed; the last continues a long document at position 300.
  const LlamaConfig config = TinyConfig();
  ExpectMatchesReference(
      config,
      {RandomSequence(37, 0, config.vocab_size, 1), RandomSequence(29, 0, config.vocab_size, 2),
       RandomSequence(20, 300, config.vocab_size, 3)},
      /*max_shard_bytes=*/100'000);  // sharded: the reference reads the index
}

TEST(LlamaTest, TiedMqaWithLlama3RopeScalingMatchesReferenceLogitsAndGradients) {
  LlamaConfig config = TinyConfig();
  config.tie_word_embeddings = true;
  config.num_key_value_heads = 1;
  // Wavelengths above 64 are slowed, those between 16 and 64 interpolated, with head_dim 16
  // some of each.
  config.rope_scaling = Scaling(64);
  ExpectMatchesReference(
      config,
      {RandomSequence(41, 0, config.vocab_size, 4), RandomSequence(31, 1000, config.vocab_size, 5)},
      /*max_shard_bytes=*/int64_t{1} << 30);
}

TEST(LlamaTest, Llama3ScalingChangesOnlyLowFrequencies) {
  LlamaConfig config = TinyConfig();
  config.rope_theta = 10000;
  const Tensor plain = RopeInverseFrequencies(config);
  config.rope_scaling = Scaling(64);
  const Tensor scaled = RopeInverseFrequencies(config);
  ASSERT_EQ(plain.sizes(), (std::vector<int64_t>{8}));
  // Wavelength 2*pi: kept. 19.9 and 62.8: interpolated. 199 and longer: divided by 8.
  EXPECT_FLOAT_EQ(scaled[0].item<float>(), plain[0].item<float>());
  EXPECT_LT(scaled[1].item<float>(), plain[1].item<float>());
  EXPECT_GT(scaled[2].item<float>(), plain[2].item<float>() / 8);
  for (int i = 3; i < 8; ++i) EXPECT_FLOAT_EQ(scaled[i].item<float>(), plain[i].item<float>() / 8);
}

TEST(LlamaTest, PackedDocumentsMatchSeparateRuns) {
  const LlamaConfig config = TinyConfig();
  auto model = TinyModel(config, 3);
  torch::NoGradGuard no_grad;
  const Sequence first = RandomSequence(37, 0, config.vocab_size, 1);
  const Sequence second = RandomSequence(29, 0, config.vocab_size, 2);
  const Packed packed = Pack({first, second});
  const Tensor together = model->forward(packed.input_ids, packed.layout);
  const Packed alone = Pack({second});
  const Tensor separate = model->forward(alone.input_ids, alone.layout);
  EXPECT_LT(RelativeError(together.slice(0, 37), separate), 1e-5);

  // Without document masking (one document, positions running on) the second document's
  // states change: the check above is not vacuous.
  const Tensor one_document = model->forward(
      packed.input_ids, {torch::zeros({66}, torch::kInt64), torch::arange(66, torch::kInt64)});
  EXPECT_GT(RelativeError(one_document.slice(0, 37), separate), 1e-2);

  // PackedLayout builds the same layout from document boundaries.
  absl::StatusOr<attention::TokenLayout> layout = PackedLayout({0, 37, 66});
  ASSERT_OK(layout);
  EXPECT_TRUE(torch::equal(layout->document, packed.layout.document));
  EXPECT_TRUE(torch::equal(layout->position, packed.layout.position));
}

TEST(LlamaTest, PackedLayoutFromBoundaries) {
  absl::StatusOr<attention::TokenLayout> layout = PackedLayout({0, 3, 3, 5});
  ASSERT_OK(layout);
  EXPECT_TRUE(torch::equal(layout->document, torch::tensor({0, 0, 0, 2, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(layout->position, torch::tensor({0, 1, 2, 0, 1}, torch::kInt64)));
  EXPECT_THAT(std::string(PackedLayout({1, 3}).status().message()), HasSubstr("start with 0"));
  EXPECT_THAT(std::string(PackedLayout({0, 3, 2}).status().message()),
              HasSubstr("cu_seqlens decreases at index 2"));
}

TEST(LlamaTest, ParameterNamesAreHuggingFaces) {
  LlamaConfig config = TinyConfig();
  std::set<std::string> expected = {"model.embed_tokens.weight", "model.norm.weight",
                                    "lm_head.weight"};
  for (int i = 0; i < 2; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* name :
         {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
          "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
          "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"}) {
      expected.insert(p + name);
    }
  }
  auto names = [](const LlamaForCausalLM& model) {
    std::set<std::string> names;
    for (const auto& item : model.named_parameters()) names.insert(item.key());
    return names;
  };
  LlamaForCausalLM untied(config);
  EXPECT_EQ(names(untied), expected);
  EXPECT_EQ(untied.named_parameters()["model.layers.1.self_attn.k_proj.weight"].sizes(),
            (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(untied.named_parameters()["model.layers.0.mlp.down_proj.weight"].sizes(),
            (std::vector<int64_t>{64, 96}));
  EXPECT_EQ(untied.named_buffers().keys(), std::vector<std::string>{"model.rotary_emb.inv_freq"});

  config.tie_word_embeddings = true;
  LlamaForCausalLM tied(config);
  expected.erase("lm_head.weight");
  EXPECT_EQ(names(tied), expected);
  EXPECT_TRUE(tied.lm_head_weight().is_same(tied.model->embed_tokens->weight));
}

TEST(LlamaTest, InitializesLikeHuggingFaceWithASeed) {
  LlamaConfig config = TinyConfig();
  config.initializer_range = 0.02;
  auto a = CreateLlama(config, 7).value();
  auto b = CreateLlama(config, 7).value();
  auto c = CreateLlama(config, 8).value();
  for (const auto& item : a->named_parameters()) {
    const Tensor& p = item.value();
    EXPECT_TRUE(torch::equal(p, b->named_parameters()[item.key()])) << item.key();
    if (absl::EndsWith(item.key(), "norm.weight")) {
      EXPECT_TRUE(torch::equal(p, torch::ones_like(p))) << item.key();
    } else {
      EXPECT_FALSE(torch::equal(p, c->named_parameters()[item.key()])) << item.key();
      EXPECT_NEAR(p.std().item<double>(), 0.02, 0.002) << item.key();
      EXPECT_NEAR(p.mean().item<double>(), 0, 0.002) << item.key();
    }
  }

  config.num_key_value_heads = 3;
  EXPECT_THAT(std::string(CreateLlama(config, 7).status().message()),
              HasSubstr("num_attention_heads (4) must be a multiple of num_key_value_heads (3)"));
}

TEST(LlamaTest, SetRopeThetaEqualsAModelBuiltWithThatTheta) {
  const LlamaConfig config = TinyConfig();  // theta 5e5
  auto model = TinyModel(config, 21);
  const std::string dir = testing::MakeTempDir() + "/model";
  ASSERT_OK(SaveLlama(*model, dir));
  torch::NoGradGuard no_grad;
  const Packed packed = Pack(
      {RandomSequence(50, 0, config.vocab_size, 8), RandomSequence(30, 0, config.vocab_size, 9)});
  auto logits = [&](LlamaForCausalLM& m) {
    return m.Logits(m.forward(packed.input_ids, packed.layout), 0, 80);
  };
  const Tensor before = logits(*model);

  for (const double theta : {8e6, 1.28e8}) {
    ASSERT_OK(model->SetRopeTheta(theta));
    EXPECT_EQ(model->config().rope_theta, theta);
    const Tensor after = logits(*model);
    EXPECT_GT(RelativeError(after, before), 1e-3);

    LlamaConfig fresh_config = config;
    fresh_config.rope_theta = theta;
    LlamaForCausalLM fresh(fresh_config);
    ASSERT_OK(LoadWeights(fresh, dir));
    EXPECT_LT((logits(fresh) - after).abs().max().item<double>(), 1e-6);
  }

  // A later save records the new theta.
  ASSERT_OK(SaveLlama(*model, dir));
  EXPECT_EQ(ReadLlamaConfig(dir + "/config.json")->rope_theta, 1.28e8);

  for (const double bad : {0.0, -1.0, std::nan(""), double{INFINITY}}) {
    EXPECT_THAT(model->SetRopeTheta(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_EQ(model->config().rope_theta, 1.28e8);
}

}  // namespace
}  // namespace prolong::model
