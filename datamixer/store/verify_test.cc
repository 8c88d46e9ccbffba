// Verifying a store: a sound one passes whole; a flipped byte in a blob file, and a value that
// reads back but is another document's tokens, are both reported by document, and the other
// documents still verify; a damaged blob or table file is named.
#include "datamixer/store/verify.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/store/internal/value_layout.h"
#include "datamixer/store/shard.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/subprocess.h"

namespace prolong::store {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

// `count` documents of `length` tokens each, distinct.
std::vector<Document> Documents(const std::string& domain, int count, int length) {
  std::vector<Document> documents;
  for (int d = 0; d < count; ++d) {
    Document document{domain, absl::StrCat(domain, "/", d), {}, ""};
    for (int t = 0; t < length; ++t) document.tokens.push_back((d * 7919 + t * 31) % 50000);
    documents.push_back(std::move(document));
  }
  return documents;
}

std::unique_ptr<Shard> Write(const std::string& dir) {
  auto shard = Shard::Open(dir, Shard::Mode::kReadWrite);
  EXPECT_OK(shard);
  EXPECT_OK((*shard)->AddBatch(Documents("books", 4, 3000)));
  std::vector<Document> chat = Documents("chat", 3, 40);
  for (Document& document : chat) document.loss_mask.assign(40, '\1');
  EXPECT_OK((*shard)->AddBatch(chat));
  return *std::move(shard);
}

TEST(VerifyTest, ASoundStoreVerifiesWhole) {
  const std::string dir = testing::MakeTempDir() + "/shard";
  Write(dir).reset();
  auto shard = Shard::Open(dir, Shard::Mode::kReadOnly);
  ASSERT_OK(shard);
  int64_t calls = 0;
  auto report = VerifyDocuments(**shard, "", [&](const VerifyReport&) { ++calls; });
  ASSERT_OK(report);
  EXPECT_EQ(report->documents, 7);
  EXPECT_EQ(report->tokens, 4 * 3000 + 3 * 40);
  EXPECT_TRUE(report->bad.empty());
  EXPECT_EQ(calls, 7);
  EXPECT_OK((*shard)->VerifyFiles());
  auto chat = VerifyDocuments(**shard, "chat");
  ASSERT_OK(chat);
  EXPECT_EQ(chat->documents, 3);
}

TEST(VerifyTest, AFlippedByteInABlobFileIsReportedByDocument) {
  const std::string dir = testing::MakeTempDir() + "/shard";
  Write(dir).reset();
  std::vector<std::filesystem::path> blobs;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".blob") blobs.push_back(entry.path());
  }
  ASSERT_FALSE(blobs.empty()) << "long documents' tokens are kept in blob files";
  {
    std::fstream file(blobs.front(), std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(blobs.front());
    file.seekg(size / 2);
    const char byte = static_cast<char>(file.get());
    file.seekp(size / 2);
    file.put(static_cast<char>(byte ^ 0x5A));
  }
  auto shard = Shard::Open(dir, Shard::Mode::kReadOnly);
  ASSERT_OK(shard);
  auto report = VerifyDocuments(**shard, "");
  ASSERT_OK(report);
  EXPECT_EQ(report->documents, 7);
  ASSERT_FALSE(report->bad.empty());
  EXPECT_LT(report->bad.size(), 7u) << "one damaged document, not the store";
  for (const BadDocument& bad : report->bad) {
    EXPECT_EQ(bad.domain, "books");
    EXPECT_THAT(bad.problem, HasSubstr("books/" + HexId(bad.id))) << bad.problem;
  }
  // RocksDB does not name the blob file when a read fails; checking the files does.
  EXPECT_THAT(report->bad[0].problem, HasSubstr("`prolongctl data verify` names it"));
  EXPECT_THAT((*shard)->VerifyFiles(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(blobs.front().string())));
}

// A byte flipped in a table file (the first, always in a data block): reading a document whose
// value it holds is DATA_LOSS naming the document and the file, never other tokens.
TEST(VerifyTest, AFlippedByteInATableFileIsDataLossNamingIt) {
  const std::string dir = testing::MakeTempDir() + "/shard";
  Write(dir).reset();
  int tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".sst") continue;
    std::fstream file(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    const char byte = static_cast<char>(file.get());
    file.seekp(0);
    file.put(static_cast<char>(byte ^ 0x5A));
    ++tables;
  }
  ASSERT_GT(tables, 0);
  auto shard = Shard::Open(dir, Shard::Mode::kReadOnly);
  ASSERT_OK(shard);
  // Short documents' tokens are kept in the table files themselves.
  const Document chat = Documents("chat", 1, 40)[0];
  const DocumentId id = ComputeDocumentId(chat.tokens, std::string(40, '\1'));
  EXPECT_THAT((*shard)->ReadTokens("chat", id),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(HasSubstr("chat/" + HexId(id)), HasSubstr(".sst"))));
  EXPECT_THAT((*shard)->VerifyFiles(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(".sst")));
}

TEST(VerifyTest, AValueThatIsAnotherDocumentsIsReported) {
  const std::string dir = testing::MakeTempDir() + "/shard";
  const std::vector<Document> chat = [] {
    std::vector<Document> documents = Documents("chat", 3, 40);
    for (Document& document : documents) document.loss_mask.assign(40, '\1');
    return documents;
  }();
  Write(dir).reset();
  {
    // The first chat document's tokens stored under the second's key, as a bad copy might.
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open({}, dir,
                                  {{"default", {}}, {"index", {}}, {"tokens", {}}, {"masks", {}}},
                                  &handles, &db)
                    .ok());
    const DocumentId second = ComputeDocumentId(chat[1].tokens, chat[1].loss_mask);
    ASSERT_TRUE(db->Put({}, handles[2], internal::DocumentKey("chat", second),
                        internal::EncodeTokens(chat[0].tokens))
                    .ok());
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
    delete db;
  }
  auto shard = Shard::Open(dir, Shard::Mode::kReadOnly);
  ASSERT_OK(shard);
  auto report = VerifyDocuments(**shard, "");
  ASSERT_OK(report);
  ASSERT_EQ(report->bad.size(), 1u);
  EXPECT_EQ(report->bad[0].id, ComputeDocumentId(chat[1].tokens, chat[1].loss_mask));
  EXPECT_EQ(report->bad[0].source, "chat/1");
  EXPECT_THAT(report->bad[0].problem, HasSubstr("not to its id"));
  EXPECT_EQ(report->tokens, 4 * 3000 + 2 * 40);
}

}  // namespace
}  // namespace prolong::store
