#include "trainer/model/llama_flops.h"

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "trainer/model/llama.h"

namespace prolong::model {
namespace {

LlamaConfig Llama3_8B() {
  LlamaConfig config;
  config.vocab_size = 128256;
  config.hidden_size = 4096;
  config.intermediate_size = 14336;
  config.num_hidden_layers = 32;
  config.num_attention_heads = 32;
  config.num_key_value_heads = 8;
  config.head_dim = 128;
  return config;
}

TEST(LlamaFlopsTest, Llama3_8B) {
  const TrainingFlops flops = LlamaTrainingFlops(Llama3_8B());
  // Per layer q 4096^2, k and v 4096 x 1024 each, o 4096^2, MLP 3 x 4096 x 14336; 32 layers
  // and a 4096 x 128256 lm_head: 7,504,658,432 weights in matrix products.
  EXPECT_DOUBLE_EQ(flops.per_token, 6.0 * 7504658432);
  EXPECT_DOUBLE_EQ(flops.per_attention_pair, 12.0 * 32 * 4096);
  // One document of 65,536 tokens: 65,536 x 65,537 / 2 causal pairs, more work than the
  // matrix products at this length.
  const int64_t pairs = int64_t{65536} * 65537 / 2;
  EXPECT_DOUBLE_EQ(flops.Of(65536, pairs), 6.0 * 7504658432 * 65536 + 12.0 * 32 * 4096 * pairs);
  EXPECT_GT(flops.per_attention_pair * pairs, flops.per_token * 65536);
}

// The count is the model's own: every matrix a token is multiplied by, and the lm_head once
// whether or not it is tied to the embedding.
TEST(LlamaFlopsTest, CountsTheModelsMatrixWeights) {
  for (const bool tied : {false, true}) {
    LlamaConfig config;
    config.vocab_size = 101;
    config.hidden_size = 48;
    config.intermediate_size = 80;
    config.num_hidden_layers = 3;
    config.num_attention_heads = 6;
    config.num_key_value_heads = 2;
    config.head_dim = 12;  // not hidden / heads, so q and o are not square
    config.tie_word_embeddings = tied;
    auto model = CreateLlama(config, 1);
    ASSERT_OK(model);
    int64_t weights = (*model)->lm_head_weight().numel();
    for (const auto& item : (*model)->named_parameters()) {
      if (item.value().dim() == 2 && item.key() != "model.embed_tokens.weight" &&
          item.key() != "lm_head.weight") {
        weights += item.value().numel();
      }
    }
    const TrainingFlops flops = LlamaTrainingFlops(config);
    EXPECT_DOUBLE_EQ(flops.per_token, 6.0 * static_cast<double>(weights)) << "tied " << tied;
    EXPECT_DOUBLE_EQ(flops.per_attention_pair, 12.0 * 3 * 6 * 12);
  }
}

}  // namespace
}  // namespace prolong::model
