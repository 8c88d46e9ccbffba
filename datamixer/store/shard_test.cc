#include "datamixer/store/shard.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::store {
namespace {

using ::prolong::testing::StatusIs;

Document Doc(std::string domain, std::string source, std::vector<uint32_t> tokens,
             std::string mask = "") {
  return Document{std::move(domain), std::move(source), std::move(tokens), std::move(mask)};
}

std::unique_ptr<Shard> OpenOrDie(const std::string& dir, Shard::Mode mode) {
  absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Open(dir, mode);
  EXPECT_OK(shard);
  return shard.ok() ? *std::move(shard) : nullptr;
}

std::vector<IndexEntry> Scan(const Shard& shard, absl::string_view domain) {
  std::vector<IndexEntry> entries;
  EXPECT_OK(shard.ScanIndex(domain, [&](const IndexEntry& e) { entries.push_back(e); }));
  return entries;
}

TEST(ShardTest, StoresDocumentsOnceAndReadsThemBack) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  auto shard = OpenOrDie(dir, Shard::Mode::kReadWrite);
  ASSERT_NE(shard, nullptr);
  const std::vector<uint32_t> wide = {1, 70000, 16777216, 4294967295u};  // 2-, 3-, 4-byte ids.
  absl::StatusOr<BatchResult> result = shard->AddBatch({
      Doc("books", "a.txt", {1, 2, 3}),
      Doc("books", "b.txt", wide),
      Doc("books", "a-again.txt", {1, 2, 3}),  // Same content: a duplicate.
      Doc("code", "a.txt", {1, 2, 3}),         // Same tokens, other domain: its own document.
      Doc("chat", "c.jsonl:1", {5, 6, 7, 8}, std::string("\0\0\1\1", 4)),
  });
  ASSERT_OK(result);
  EXPECT_EQ(result->added, 4);
  EXPECT_EQ(result->duplicates, 1);
  EXPECT_EQ(result->tokens_added, 3 + 4 + 3 + 4);

  result = shard->AddBatch({Doc("books", "later.txt", wide)});
  ASSERT_OK(result);
  EXPECT_EQ(result->added, 0);
  EXPECT_EQ(result->duplicates, 1);

  const std::vector<IndexEntry> books = Scan(*shard, "books");
  ASSERT_EQ(books.size(), 2u);
  EXPECT_EQ(Scan(*shard, "").size(), 4u);
  EXPECT_EQ(Scan(*shard, "boo").size(), 0u);  // A prefix of a domain is not that domain.
  const DocumentId wide_id = ComputeDocumentId(wide, "");
  for (const IndexEntry& entry : books) {
    EXPECT_EQ(entry.domain, "books");
    EXPECT_EQ(entry.length, entry.id == wide_id ? 4 : 3);
    EXPECT_EQ(entry.source, entry.id == wide_id ? "b.txt" : "a.txt");
  }
  EXPECT_EQ(*shard->ReadTokens("books", wide_id), wide);
  EXPECT_EQ(*shard->ReadTokens("books", wide_id, 1, 2), (std::vector<uint32_t>{70000, 16777216}));
  EXPECT_THAT(shard->ReadTokens("books", wide_id, 3, 2), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(shard->ReadTokens("code", wide_id), StatusIs(absl::StatusCode::kNotFound));

  const DocumentId chat_id = ComputeDocumentId({5, 6, 7, 8}, std::string("\0\0\1\1", 4));
  EXPECT_EQ(*shard->ReadLossMask("chat", chat_id), std::string("\0\0\1\1", 4));
  EXPECT_EQ(*shard->ReadLossMask("books", wide_id), "");
}

TEST(ShardTest, ABadDocumentRejectsTheWholeBatch) {
  auto shard = OpenOrDie(prolong::testing::MakeTempDir() + "/shard", Shard::Mode::kReadWrite);
  ASSERT_NE(shard, nullptr);
  struct Case {
    Document bad;
    std::string message;
  };
  const Case cases[] = {
      {Doc("Books", "x.txt", {1}), "x.txt: domain 'Books' is not [a-z0-9_-]{1,63}"},
      {Doc("books", "empty.txt", {}), "empty.txt: empty document"},
      {Doc("chat", "c:3", {1, 2}, "\1"), "c:3: loss mask has 1 entries for 2 tokens"},
      {Doc("chat", "c:4", {1, 2}, "\1\2"), "c:4: loss mask entry 1 is 2, not 0 or 1"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<BatchResult> result = shard->AddBatch({Doc("books", "good.txt", {9}), c.bad});
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kInvalidArgument, c.message));
  }
  EXPECT_EQ(Scan(*shard, "").size(), 0u);
}

TEST(ShardTest, PersistsAndOpensReadOnlyInManyReaders) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  EXPECT_THAT(Shard::Open(dir, Shard::Mode::kReadOnly), StatusIs(absl::StatusCode::kNotFound));
  {
    auto writer = OpenOrDie(dir, Shard::Mode::kReadWrite);
    ASSERT_NE(writer, nullptr);
    ASSERT_OK(writer->AddBatch({Doc("web", "w", std::vector<uint32_t>(5000, 42))}));
    EXPECT_THAT(Shard::Open(dir, Shard::Mode::kReadWrite),
                StatusIs(absl::StatusCode::kFailedPrecondition));  // One writer at a time.
  }
  auto reader1 = OpenOrDie(dir, Shard::Mode::kReadOnly);
  auto reader2 = OpenOrDie(dir, Shard::Mode::kReadOnly);
  ASSERT_NE(reader1, nullptr);
  ASSERT_NE(reader2, nullptr);
  const std::vector<IndexEntry> entries = Scan(*reader2, "web");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].length, 5000);
  EXPECT_EQ(reader1->ReadTokens("web", entries[0].id)->size(), 5000u);
  EXPECT_THAT(reader1->AddBatch({Doc("web", "w2", {1})}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// A writer killed with SIGKILL at random moments leaves a shard that opens, in which every batch
// is wholly present or wholly absent.
TEST(ShardTest, KillingTheWriterLeavesWholeBatches) {
  constexpr int kBatchSize = 20;
  std::mt19937 rng(11);
  for (int round = 0; round < 4; ++round) {
    const std::string dir = prolong::testing::MakeTempDir() + "/shard";
    int first_batch[2];
    ASSERT_EQ(pipe(first_batch), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto shard = Shard::Open(dir, Shard::Mode::kReadWrite);
      if (!shard.ok()) _exit(1);
      for (int batch = 0;; ++batch) {
        if (batch == 1 && write(first_batch[1], "1", 1) != 1) _exit(3);
        std::vector<Document> documents;
        for (int i = 0; i < kBatchSize; ++i) {
          documents.push_back(Doc("web", absl::StrCat(batch, "/", i),
                                  std::vector<uint32_t>(300 + i, batch * 100 + i)));
        }
        if (!(*shard)->AddBatch(documents).ok()) _exit(2);
      }
    }
    // Kill at a random moment once the first batch is in.
    char byte;
    ASSERT_EQ(read(first_batch[0], &byte, 1), 1);
    close(first_batch[0]);
    close(first_batch[1]);
    usleep(std::uniform_int_distribution<int>(0, 300000)(rng));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;

    auto shard = OpenOrDie(dir, Shard::Mode::kReadOnly);
    ASSERT_NE(shard, nullptr);
    std::map<int, int> per_batch;
    for (const IndexEntry& entry : Scan(*shard, "web")) {
      int batch = 0;
      ASSERT_TRUE(
          absl::SimpleAtoi(std::vector<std::string>(absl::StrSplit(entry.source, '/'))[0], &batch));
      ++per_batch[batch];
      EXPECT_EQ(shard->ReadTokens("web", entry.id)->size(), static_cast<size_t>(entry.length));
    }
    ASSERT_FALSE(per_batch.empty()) << "no batch landed before the kill";
    for (const auto& [batch, count] : per_batch) {
      EXPECT_EQ(count, kBatchSize) << "batch " << batch << " is partial";
    }
    // Batches land in order, so the ones present are 0..N-1.
    EXPECT_EQ(per_batch.rbegin()->first + 1, static_cast<int>(per_batch.size()));
  }
}

}  // namespace
}  // namespace prolong::store
