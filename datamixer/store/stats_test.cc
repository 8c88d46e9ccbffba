#include "datamixer/store/stats.h"

#include <string>

#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::store {
namespace {

Document Doc(std::string domain, int length, uint32_t fill) {
  return Document{std::move(domain), "src", std::vector<uint32_t>(length, fill), ""};
}

std::unique_ptr<Shard> NewShard() {
  auto shard = Shard::Open(prolong::testing::MakeTempDir() + "/shard", Shard::Mode::kReadWrite);
  EXPECT_OK(shard);
  return shard.ok() ? *std::move(shard) : nullptr;
}

TEST(StatsTest, CountsPerDomainWithAHistogram) {
  auto shard = NewShard();
  ASSERT_NE(shard, nullptr);
  ASSERT_OK(shard->AddBatch({Doc("books", 70000, 1), Doc("books", 1000, 2), Doc("books", 1025, 3),
                             Doc("books", 2000000, 4), Doc("web", 10, 5)}));
  absl::StatusOr<std::vector<DomainStats>> stats = ComputeDomainStats(*shard);
  ASSERT_OK(stats);
  ASSERT_EQ(stats->size(), 2u);
  const DomainStats& books = (*stats)[0];
  EXPECT_EQ(books.name, "books");
  EXPECT_EQ(books.documents, 4);
  EXPECT_EQ(books.tokens, 70000 + 1000 + 1025 + 2000000);
  EXPECT_EQ(books.min_length, 1000);
  EXPECT_EQ(books.max_length, 2000000);
  ASSERT_EQ(books.histogram.size(), 12u);  // 1K .. 1M, then unbounded.
  EXPECT_EQ(books.histogram[0].upper_bound, 1024);
  EXPECT_EQ(books.histogram[0].documents, 1);  // 1000.
  EXPECT_EQ(books.histogram[1].documents, 1);  // 1025 <= 2048.
  EXPECT_EQ(books.histogram[7].upper_bound, 131072);
  EXPECT_EQ(books.histogram[7].documents, 1);  // 70000: above 64K, so a long-domain document.
  EXPECT_EQ(books.histogram[11].upper_bound, 0);
  EXPECT_EQ(books.histogram[11].tokens, 2000000);
  EXPECT_EQ((*stats)[1].name, "web");

  stats = ComputeDomainStats(*shard, "web");
  ASSERT_OK(stats);
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].tokens, 10);
}

TEST(StatsTest, FingerprintDependsOnContentNotOrder) {
  auto a = NewShard();
  auto b = NewShard();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_OK(a->AddBatch({Doc("code", 5, 1), Doc("web", 7, 2)}));
  ASSERT_OK(b->AddBatch({Doc("web", 7, 2)}));
  ASSERT_OK(b->AddBatch({Doc("code", 5, 1)}));
  const std::string fingerprint = *ComputeFingerprint(*a);
  EXPECT_EQ(fingerprint.size(), 64u);
  EXPECT_EQ(*ComputeFingerprint(*b), fingerprint);

  ASSERT_OK(b->AddBatch({Doc("code", 5, 1)}));  // A duplicate changes nothing.
  EXPECT_EQ(*ComputeFingerprint(*b), fingerprint);
  ASSERT_OK(b->AddBatch({Doc("code", 6, 1)}));
  EXPECT_NE(*ComputeFingerprint(*b), fingerprint);
}

}  // namespace
}  // namespace prolong::store
