#include "evaluator/diagnostics/position_loss.h"

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "datamixer/store/store.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "torch/torch.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_test_util.h"

namespace prolong::evaluator::diagnostics {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;
using torch::Tensor;

constexpr uint64_t kSeed = 41;

std::unique_ptr<store::Store> WriteStore(const std::vector<std::vector<uint32_t>>& documents,
                                         uint32_t vocab = 128) {
  const std::string dir = prolong::testing::MakeTempDir() + "/store";
  auto store = store::Store::OpenForWriting(dir, {"test-tokenizer", vocab});
  EXPECT_OK(store);
  std::vector<store::Document> batch;
  for (size_t i = 0; i < documents.size(); ++i) {
    batch.push_back({"books", "books/" + std::to_string(i), documents[i], ""});
  }
  EXPECT_OK((*store)->shard().AddBatch(batch));
  return *std::move(store);
}

std::vector<uint32_t> RandomDocument(int64_t length, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<uint32_t> ids(length);
  for (uint32_t& id : ids) id = std::uniform_int_distribution<uint32_t>(0, 127)(random);
  return ids;
}

TEST(PositionLossTest, BucketsHoldThePlainPerTokenLoss) {
  auto store = WriteStore({RandomDocument(70, 1), RandomDocument(25, 2), RandomDocument(200, 3)});
  const model::LlamaConfig config = model::testing::TinyLlamaConfig();
  auto model = *model::CreateLlama(config, kSeed);
  auto plain = *model::CreateLlama(config, kSeed);
  PositionLossOptions options;
  options.domain = "books";
  options.max_length = 100;
  options.bucket_tokens = 32;
  options.chunk_tokens = 24;  // chunks end inside buckets and documents
  ASSERT_OK_AND_ASSIGN(const PositionLoss measured,
                       MeasurePositionLoss(*model, store->shard(), options));

  // By hand: each document's first 100 tokens through the plain model, cross-entropy of every
  // next token, summed into the bucket of the predicted token's position.
  std::vector<double> sums(4, 0);
  std::vector<int64_t> counts(4, 0);
  int64_t documents = 0;
  ASSERT_OK(store->shard().ScanIndex("books", [&](const store::IndexEntry& entry) {
    ++documents;
    const int64_t n = std::min<int64_t>(entry.length, 100);
    const std::vector<uint32_t> tokens = *store->shard().ReadTokens("books", entry.id, 0, n);
    const Tensor ids = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end()));
    torch::NoGradGuard no_grad;
    const Tensor hidden = plain->forward(ids, {torch::zeros({n}, torch::kInt64), torch::arange(n)});
    const Tensor losses = torch::nn::functional::cross_entropy(
        plain->Logits(hidden, 0, n - 1), ids.narrow(0, 1, n - 1),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    for (int64_t p = 1; p < n; ++p) {
      sums[p / 32] += losses[p - 1].item<double>();
      ++counts[p / 32];
    }
  }));
  EXPECT_EQ(measured.documents, documents);
  ASSERT_EQ(measured.buckets.size(), 4u);
  for (size_t b = 0; b < 4; ++b) {
    const PositionBucket& bucket = measured.buckets[b];
    EXPECT_EQ(bucket.begin, static_cast<int64_t>(b) * 32);
    EXPECT_EQ(bucket.end, std::min<int64_t>(bucket.begin + 32, 100));
    EXPECT_EQ(bucket.tokens, counts[b]) << "bucket " << b;
    EXPECT_NEAR(bucket.mean_loss, sums[b] / counts[b], 1e-5) << "bucket " << b;
  }
  // 69 + 24 + 99 predictions in all; the short document ends in the first bucket.
  EXPECT_EQ(counts[0] + counts[1] + counts[2] + counts[3], 69 + 24 + 99);

  // The model's own attention is back.
  torch::NoGradGuard no_grad;
  const Tensor ids = torch::arange(10) * 7 % 128;
  const attention::TokenLayout layout{torch::zeros({10}, torch::kInt64), torch::arange(10)};
  EXPECT_TRUE(torch::equal(model->forward(ids, layout), plain->forward(ids, layout)));
}

TEST(PositionLossTest, TakesTheFirstDocumentsInKeyOrder) {
  std::vector<std::vector<uint32_t>> documents;
  for (uint32_t i = 0; i < 5; ++i) documents.push_back(RandomDocument(10 + i, 10 + i));
  auto store = WriteStore(documents);
  auto model = *model::CreateLlama(model::testing::TinyLlamaConfig(), kSeed);
  PositionLossOptions options;
  options.domain = "books";
  options.max_documents = 2;
  options.max_length = 64;
  options.bucket_tokens = 64;
  ASSERT_OK_AND_ASSIGN(const PositionLoss measured,
                       MeasurePositionLoss(*model, store->shard(), options));
  std::vector<int64_t> lengths;
  ASSERT_OK(store->shard().ScanIndex(
      "books", [&](const store::IndexEntry& entry) { lengths.push_back(entry.length); }));
  EXPECT_EQ(measured.documents, 2);
  EXPECT_EQ(measured.buckets[0].tokens, lengths[0] - 1 + lengths[1] - 1);
}

TEST(PositionLossTest, BadInputIsNamed) {
  auto store = WriteStore({RandomDocument(20, 1), {5, 300, 7}}, /*vocab=*/512);
  auto model = *model::CreateLlama(model::testing::TinyLlamaConfig(), kSeed);
  PositionLossOptions options;
  options.domain = "code";
  EXPECT_THAT(MeasurePositionLoss(*model, store->shard(), options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("domain 'code' has no documents")));
  options.domain = "books";
  EXPECT_THAT(MeasurePositionLoss(*model, store->shard(), options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("has token id 300, outside the model's vocabulary of 128")));
  options.bucket_tokens = 0;
  EXPECT_THAT(
      MeasurePositionLoss(*model, store->shard(), options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bucket_tokens must be >= 1")));
}

}  // namespace
}  // namespace prolong::evaluator::diagnostics
