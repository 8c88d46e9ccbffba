// Long documents in chunks: every slice reads back, a slice reads only its chunks, dedup and
// reads work across layouts (stores written before chunking included), and a damaged chunk is
// DATA_LOSS naming the document.
#include <fstream>
#include <memory>
#include <random>
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
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"
#include "tests/subprocess.h"

namespace prolong::store {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

ShardOptions Chunks(int64_t chunk_tokens) {
  ShardOptions options;
  options.chunk_tokens = chunk_tokens;
  return options;
}

std::unique_ptr<Shard> OpenOrDie(const std::string& dir, Shard::Mode mode,
                                 ShardOptions options = {}) {
  absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Open(dir, mode, options);
  EXPECT_OK(shard);
  return shard.ok() ? *std::move(shard) : nullptr;
}

// The shard's RocksDB opened directly, to write values as the code before chunking did, or to
// damage them. Blob settings as a shard's, so that what it writes lands in blob files.
class RawShard {
 public:
  enum Family { kIndex = 1, kTokens = 2, kMasks = 3 };

  explicit RawShard(const std::string& dir) {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    rocksdb::ColumnFamilyOptions blobs;
    blobs.enable_blob_files = true;
    blobs.min_blob_size = 256;
    blobs.blob_compression_type = rocksdb::kZSTD;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {"default", {}}, {"index", {}}, {"tokens", blobs}, {"masks", blobs}};
    rocksdb::DB* db = nullptr;
    const rocksdb::Status status = rocksdb::DB::Open(db_options, dir, families, &handles_, &db);
    EXPECT_TRUE(status.ok()) << status.ToString();
    db_.reset(db);
  }
  ~RawShard() {
    EXPECT_TRUE(db_->Flush(rocksdb::FlushOptions(), handles_).ok());
    for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
  }

  void Put(Family family, const std::string& key, const std::string& value) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), handles_[family], key, value).ok());
  }
  void Delete(Family family, const std::string& key) {
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), handles_[family], key).ok());
  }

  // A document exactly as shards wrote it before chunking: spelled out here rather than taken
  // from the code, so that a change to the old layout's reading shows.
  DocumentId PutOldLayout(const std::string& domain, const std::vector<uint32_t>& tokens,
                          const std::string& mask, const std::string& source) {
    const DocumentId id = ComputeDocumentId(tokens, mask);
    const std::string key = domain + std::string(1, '\0') + id;
    std::string entry;
    for (uint64_t n = tokens.size();; n >>= 7) {  // Varint length, then the source.
      entry.push_back(static_cast<char>((n & 0x7F) | (n >= 0x80 ? 0x80 : 0)));
      if (n < 0x80) break;
    }
    Put(kIndex, key, entry + source);
    uint32_t max_id = 0;
    for (uint32_t token : tokens) max_id = std::max(max_id, token);
    const int width = max_id < (1u << 16) ? 2 : max_id < (1u << 24) ? 3 : 4;
    std::string value(1, static_cast<char>(width));
    for (uint32_t token : tokens) {
      for (int b = 0; b < width; ++b) value.push_back(static_cast<char>(token >> (8 * b)));
    }
    Put(kTokens, key, value);
    if (!mask.empty()) Put(kMasks, key, mask);
    return id;
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

std::vector<uint32_t> Slice(const std::vector<uint32_t>& tokens, int64_t offset, int64_t length) {
  return std::vector<uint32_t>(tokens.begin() + offset, tokens.begin() + offset + length);
}

// Token ids whose widths change along the document (2, 3 and 4 bytes), so that chunks of one
// document are stored at different widths.
std::vector<uint32_t> MixedWidthTokens(int64_t length, uint32_t seed) {
  std::vector<uint32_t> tokens(length);
  for (int64_t i = 0; i < length; ++i) {
    const uint32_t scale = (i / 5) % 3 == 0 ? 1 : (i / 5) % 3 == 1 ? 70000 : 17000000;
    tokens[i] = seed + static_cast<uint32_t>(i) * scale;
  }
  return tokens;
}

std::vector<uint32_t> RandomTokens(int64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> tokens(length);
  for (uint32_t& token : tokens) token = static_cast<uint32_t>(rng() % 128000);
  return tokens;
}

std::string RandomMask(int64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string mask(length, '\0');
  for (char& bit : mask) bit = static_cast<char>(rng() % 2);
  return mask;
}

// Every (offset, length) slice of every document, tokens and mask, and the ranges past its end.
void ExpectEverySlice(const Shard& shard, const std::string& domain,
                      const std::vector<Document>& documents) {
  for (const Document& document : documents) {
    const DocumentId id = ComputeDocumentId(document.tokens, document.loss_mask);
    const int64_t n = static_cast<int64_t>(document.tokens.size());
    SCOPED_TRACE(absl::StrCat(document.source, ", ", n, " tokens"));
    for (int64_t offset = 0; offset <= n; ++offset) {
      for (int64_t length = 0; offset + length <= n; ++length) {
        absl::StatusOr<std::vector<uint32_t>> tokens = shard.ReadTokens(domain, id, offset, length);
        ASSERT_OK(tokens);
        ASSERT_EQ(*tokens, Slice(document.tokens, offset, length))
            << "tokens [" << offset << ", " << offset + length << ")";
        absl::StatusOr<std::string> mask = shard.ReadLossMask(domain, id, offset, length);
        ASSERT_OK(mask);
        ASSERT_EQ(*mask,
                  document.loss_mask.empty() ? "" : document.loss_mask.substr(offset, length))
            << "mask [" << offset << ", " << offset + length << ")";
      }
      ASSERT_EQ(*shard.ReadTokens(domain, id, offset), Slice(document.tokens, offset, n - offset));
    }
    EXPECT_EQ(*shard.ReadLossMask(domain, id), document.loss_mask);
    for (const auto& [offset, length] :
         std::vector<std::pair<int64_t, int64_t>>{{n + 1, -1}, {0, n + 1}, {-1, 1}, {n, 1}}) {
      EXPECT_THAT(shard.ReadTokens(domain, id, offset, length),
                  StatusIs(absl::StatusCode::kOutOfRange,
                           HasSubstr(absl::StrCat("of a ", n, "-token document"))))
          << offset << ", " << length;
    }
    if (!document.loss_mask.empty()) {
      EXPECT_THAT(shard.ReadLossMask(domain, id, n, 1), StatusIs(absl::StatusCode::kOutOfRange));
    }
  }
}

TEST(ShardChunksTest, EverySliceReadsWhatWasWritten) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  std::vector<Document> documents;
  for (int64_t length = 1; length <= 14; ++length) {
    documents.push_back({"books", absl::StrCat("plain-", length), MixedWidthTokens(length, 1), ""});
    documents.push_back({"books", absl::StrCat("masked-", length), MixedWidthTokens(length, 2),
                         RandomMask(length, length)});
  }
  {
    auto writer = OpenOrDie(dir, Shard::Mode::kReadWrite, Chunks(4));
    ASSERT_NE(writer, nullptr);
    absl::StatusOr<BatchResult> result = writer->AddBatch(documents);
    ASSERT_OK(result);
    EXPECT_EQ(result->added, static_cast<int64_t>(documents.size()));
    ExpectEverySlice(*writer, "books", documents);  // From the memtable.
  }
  auto reader = OpenOrDie(dir, Shard::Mode::kReadOnly);  // From table and blob files.
  ASSERT_NE(reader, nullptr);
  ExpectEverySlice(*reader, "books", documents);
  int64_t listed = 0;
  ASSERT_OK(reader->ScanIndex("books", [&](const IndexEntry&) { ++listed; }));
  EXPECT_EQ(listed, static_cast<int64_t>(documents.size()));  // Chunks are not documents.
}

TEST(ShardChunksTest, SequenceSizedSlicesOfALongDocumentAtTheDefaultChunkSize) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  constexpr int64_t kChunk = ShardOptions().chunk_tokens;
  const int64_t n = 5 * kChunk + 100;
  const Document document{"code", "repo", RandomTokens(n, 7), RandomMask(n, 8)};
  const DocumentId id = ComputeDocumentId(document.tokens, document.loss_mask);
  {
    auto writer = OpenOrDie(dir, Shard::Mode::kReadWrite);
    ASSERT_NE(writer, nullptr);
    ASSERT_OK(writer->AddBatch({document}));
  }
  auto shard = OpenOrDie(dir, Shard::Mode::kReadOnly);
  ASSERT_NE(shard, nullptr);
  for (int64_t offset : {int64_t{0}, int64_t{1}, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk,
                         3 * kChunk - 1, n - kChunk, n - 1, n}) {
    for (int64_t length : {int64_t{0}, int64_t{1}, kChunk - 1, kChunk, kChunk + 1, 2 * kChunk,
                           3 * kChunk + 7, n - offset}) {
      if (offset + length > n) continue;
      ASSERT_OK_AND_ASSIGN(const std::vector<uint32_t> tokens,
                           shard->ReadTokens("code", id, offset, length));
      EXPECT_EQ(tokens, Slice(document.tokens, offset, length)) << offset << " + " << length;
      ASSERT_OK_AND_ASSIGN(const std::string mask, shard->ReadLossMask("code", id, offset, length));
      EXPECT_EQ(mask, document.loss_mask.substr(offset, length)) << offset << " + " << length;
    }
  }
}

// What RocksDB read from blob files (compressed bytes, and reads) during `read`, on this thread.
struct BlobReads {
  uint64_t reads = 0;
  uint64_t bytes = 0;
};
template <typename Read>
BlobReads CountBlobReads(Read read) {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  rocksdb::get_perf_context()->Reset();
  read();
  const BlobReads counted{rocksdb::get_perf_context()->blob_read_count,
                          rocksdb::get_perf_context()->blob_read_byte};
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  return counted;
}

// Walking a document slice by slice, as a plan walks a long document sequence by sequence,
// reads each of its stored bytes once; the layout before chunking read the whole document for
// every slice.
TEST(ShardChunksTest, ASliceReadsOnlyTheChunksItOverlaps) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  constexpr int64_t kChunk = 1024, kChunks = 16, kSlice = 4 * kChunk;
  const std::vector<uint32_t> tokens = RandomTokens(kChunks * kChunk, 3);
  const std::string mask = RandomMask(kChunks * kChunk, 4);
  const DocumentId id = ComputeDocumentId(tokens, mask);
  {
    RawShard raw(dir);
    ASSERT_EQ(raw.PutOldLayout("whole", tokens, mask, "old"), id);
  }
  {
    auto writer = OpenOrDie(dir, Shard::Mode::kReadWrite, Chunks(kChunk));
    ASSERT_NE(writer, nullptr);
    ASSERT_OK(writer->AddBatch({{"chunked", "new", tokens, mask}}));
  }
  auto shard = OpenOrDie(dir, Shard::Mode::kReadOnly);
  ASSERT_NE(shard, nullptr);

  for (const char* family : {"tokens", "loss mask"}) {
    SCOPED_TRACE(family);
    const bool read_tokens = family == std::string("tokens");
    const auto read = [&](const std::string& domain, int64_t offset, int64_t length) {
      return CountBlobReads([&] {
        if (read_tokens) {
          ASSERT_EQ(*shard->ReadTokens(domain, id, offset, length), Slice(tokens, offset, length));
        } else {
          ASSERT_EQ(*shard->ReadLossMask(domain, id, offset, length), mask.substr(offset, length));
        }
      });
    };
    const BlobReads whole = read("chunked", 0, kChunks * kChunk);
    ASSERT_EQ(whole.reads, static_cast<uint64_t>(kChunks)) << "the chunks are not in blob files";

    BlobReads walk;
    for (int64_t offset = 0; offset < kChunks * kChunk; offset += kSlice) {
      const BlobReads slice = read("chunked", offset, kSlice);
      EXPECT_EQ(slice.reads, static_cast<uint64_t>(kSlice / kChunk)) << "slice at " << offset;
      EXPECT_LT(slice.bytes, whole.bytes / 3) << "slice at " << offset;
      walk.reads += slice.reads;
      walk.bytes += slice.bytes;
    }
    EXPECT_EQ(walk.reads, whole.reads);
    EXPECT_EQ(walk.bytes, whole.bytes);  // Each byte once.

    const BlobReads one = read("chunked", 5 * kChunk + 10, 100);  // Inside chunk 5.
    EXPECT_EQ(one.reads, 1u);
    EXPECT_LT(one.bytes, 2 * whole.bytes / kChunks);

    // The old layout: every slice reads the whole document.
    const BlobReads old_whole = read("whole", 0, kChunks * kChunk);
    ASSERT_EQ(old_whole.reads, 1u);
    for (int64_t offset = 0; offset < kChunks * kChunk; offset += kSlice) {
      EXPECT_EQ(read("whole", offset, kSlice).bytes, old_whole.bytes);
    }
  }
}

TEST(ShardChunksTest, StoresWrittenBeforeChunkingRead) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  const std::vector<Document> old_documents = {
      {"books", "short", {1, 2, 3}, ""},
      {"books", "wide", MixedWidthTokens(23, 5), ""},
      {"books", "long", RandomTokens(40000, 6), ""},  // Longer than a default chunk.
      {"chat", "sft", MixedWidthTokens(21, 9), RandomMask(21, 10)},
  };
  {
    RawShard raw(dir);
    for (const Document& document : old_documents) {
      raw.PutOldLayout(document.domain, document.tokens, document.loss_mask, document.source);
    }
  }
  auto shard = OpenOrDie(dir, Shard::Mode::kReadOnly);
  ASSERT_NE(shard, nullptr);
  std::vector<IndexEntry> entries;
  ASSERT_OK(shard->ScanIndex("", [&](const IndexEntry& entry) { entries.push_back(entry); }));
  ASSERT_EQ(entries.size(), old_documents.size());
  for (const Document& document : old_documents) {
    const DocumentId id = ComputeDocumentId(document.tokens, document.loss_mask);
    EXPECT_EQ(*shard->ReadTokens(document.domain, id), document.tokens) << document.source;
    EXPECT_EQ(*shard->ReadLossMask(document.domain, id), document.loss_mask) << document.source;
    if (document.tokens.size() >= 20) {
      EXPECT_EQ(*shard->ReadTokens(document.domain, id, 17, 3), Slice(document.tokens, 17, 3))
          << document.source;
    }
  }
  ExpectEverySlice(*shard, "books", {old_documents[0], old_documents[1]});
  ExpectEverySlice(*shard, "chat", {old_documents[3]});
}

TEST(ShardChunksTest, DuplicatesAreFoundWhateverTheLayout) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  const std::vector<uint32_t> old_tokens = RandomTokens(40, 1);
  const std::vector<uint32_t> chunked_tokens = RandomTokens(40, 2);
  const std::vector<uint32_t> later_tokens = RandomTokens(40, 3);
  {
    RawShard raw(dir);
    raw.PutOldLayout("books", old_tokens, "", "old");
  }
  {
    auto shard = OpenOrDie(dir, Shard::Mode::kReadWrite, Chunks(8));
    ASSERT_NE(shard, nullptr);
    absl::StatusOr<BatchResult> result = shard->AddBatch(
        {{"books", "old-again", old_tokens, ""}, {"books", "new", chunked_tokens, ""}});
    ASSERT_OK(result);
    EXPECT_EQ(result->added, 1);
    EXPECT_EQ(result->duplicates, 1);
  }
  // Another chunk size, and none: the same documents are still duplicates.
  for (const int64_t chunk_tokens : {16, 0}) {
    auto shard = OpenOrDie(dir, Shard::Mode::kReadWrite, Chunks(chunk_tokens));
    ASSERT_NE(shard, nullptr);
    absl::StatusOr<BatchResult> result =
        shard->AddBatch({{"books", "a", old_tokens, ""}, {"books", "b", chunked_tokens, ""}});
    ASSERT_OK(result);
    EXPECT_EQ(result->added, 0) << chunk_tokens;
    EXPECT_EQ(result->duplicates, 2) << chunk_tokens;
  }
  {
    auto shard = OpenOrDie(dir, Shard::Mode::kReadWrite, Chunks(16));
    ASSERT_NE(shard, nullptr);
    ASSERT_OK(shard->AddBatch({{"books", "later", later_tokens, ""}}));
  }
  auto shard = OpenOrDie(dir, Shard::Mode::kReadOnly);
  ASSERT_NE(shard, nullptr);
  for (const auto* tokens : {&old_tokens, &chunked_tokens, &later_tokens}) {
    EXPECT_EQ(*shard->ReadTokens("books", ComputeDocumentId(*tokens, "")), *tokens);
    EXPECT_EQ(*shard->ReadTokens("books", ComputeDocumentId(*tokens, ""), 7, 10),
              Slice(*tokens, 7, 10));
  }
  int64_t listed = 0;
  ASSERT_OK(shard->ScanIndex("books", [&](const IndexEntry&) { ++listed; }));
  EXPECT_EQ(listed, 3);
}

class DamagedChunkTest : public ::testing::Test {
 protected:
  static constexpr int64_t kChunk = 8;

  void SetUp() override {
    dir_ = prolong::testing::MakeTempDir() + "/shard";
    auto writer = OpenOrDie(dir_, Shard::Mode::kReadWrite, Chunks(kChunk));
    ASSERT_NE(writer, nullptr);
    ASSERT_OK(writer->AddBatch({{"books", "long", tokens_, mask_}}));
  }

  std::unique_ptr<Shard> Reader() { return OpenOrDie(dir_, Shard::Mode::kReadOnly); }
  std::string Key() const { return internal::DocumentKey("books", id_); }
  std::string Name() const { return "document books/" + HexId(id_); }

  std::string dir_;
  const std::vector<uint32_t> tokens_ = RandomTokens(5 * kChunk - 3, 1);
  const std::string mask_ = RandomMask(5 * kChunk - 3, 2);
  const DocumentId id_ = ComputeDocumentId(tokens_, mask_);
};

TEST_F(DamagedChunkTest, AChunkOfTheWrongSizeIsDataLoss) {
  {
    RawShard raw(dir_);
    raw.Put(RawShard::kTokens, internal::ChunkKey(Key(), 2),
            internal::EncodeTokens(Slice(tokens_, 2 * kChunk, kChunk - 1)));
    raw.Put(RawShard::kMasks, internal::ChunkKey(Key(), 1), "\1");
  }
  auto shard = Reader();
  ASSERT_NE(shard, nullptr);
  EXPECT_THAT(shard->ReadTokens("books", id_),
              StatusIs(absl::StatusCode::kDataLoss, Name() + ": tokens chunk 2 of 5 is corrupt"));
  EXPECT_THAT(shard->ReadTokens("books", id_, 2 * kChunk + 3, 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(Name())));
  EXPECT_THAT(
      shard->ReadLossMask("books", id_),
      StatusIs(absl::StatusCode::kDataLoss, Name() + ": loss mask chunk 1 of 5 is corrupt"));
  // Only the slices over the damaged chunk are lost.
  EXPECT_EQ(*shard->ReadTokens("books", id_, 0, 2 * kChunk), Slice(tokens_, 0, 2 * kChunk));
  EXPECT_EQ(*shard->ReadTokens("books", id_, 3 * kChunk),
            Slice(tokens_, 3 * kChunk, 2 * kChunk - 3));
}

TEST_F(DamagedChunkTest, ABadWidthAMissingChunkAndABadHeadAreDataLoss) {
  {
    RawShard raw(dir_);
    raw.Put(RawShard::kTokens, internal::ChunkKey(Key(), 0), std::string(1 + 2 * kChunk, '\x07'));
    raw.Delete(RawShard::kTokens, internal::ChunkKey(Key(), 4));
  }
  {
    auto shard = Reader();
    ASSERT_NE(shard, nullptr);
    EXPECT_THAT(shard->ReadTokens("books", id_, 0, 1),
                StatusIs(absl::StatusCode::kDataLoss, Name() + ": tokens chunk 0 of 5 is corrupt"));
    EXPECT_THAT(shard->ReadTokens("books", id_, 4 * kChunk),
                StatusIs(absl::StatusCode::kDataLoss, Name() + ": tokens chunk 4 of 5 is missing"));
  }
  {
    RawShard raw(dir_);
    raw.Put(RawShard::kTokens, Key(), std::string("C\x80", 2));
    raw.Put(RawShard::kMasks, Key(), internal::EncodeHead({5 * kChunk, kChunk}));  // Wrong length.
  }
  auto shard = Reader();
  ASSERT_NE(shard, nullptr);
  EXPECT_THAT(shard->ReadTokens("books", id_, kChunk, 1),
              StatusIs(absl::StatusCode::kDataLoss, Name() + ": corrupt tokens chunk head"));
  EXPECT_THAT(
      shard->ReadLossMask("books", id_),
      StatusIs(absl::StatusCode::kDataLoss, Name() + ": loss mask chunk 4 of 5 is corrupt"));
}

std::vector<std::string> BlobFiles(const std::string& dir) {
  std::vector<std::string> children, blobs;
  EXPECT_TRUE(rocksdb::Env::Default()->GetChildren(dir, &children).ok());
  for (const std::string& child : children) {
    if (absl::EndsWith(child, ".blob")) blobs.push_back(dir + "/" + child);
  }
  return blobs;
}

// Damage RocksDB's checksums catch: a byte flipped in the blob file that holds the chunks.
TEST(ShardChunksTest, AFlippedByteInABlobFileIsDataLoss) {
  const std::string dir = prolong::testing::MakeTempDir() + "/shard";
  const std::vector<uint32_t> tokens = RandomTokens(8 * 1024, 5);
  const DocumentId id = ComputeDocumentId(tokens, "");
  {
    auto writer = OpenOrDie(dir, Shard::Mode::kReadWrite, Chunks(1024));
    ASSERT_NE(writer, nullptr);
    ASSERT_OK(writer->AddBatch({{"books", "long", tokens, ""}}));
  }
  const std::vector<std::string> blobs = BlobFiles(dir);
  ASSERT_EQ(blobs.size(), 1u) << "expected the chunks in one blob file";
  const std::string& path = blobs[0];
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(0, std::ios::end);
    const std::streamoff middle = file.tellg() / 2;
    file.seekg(middle);
    char byte = 0;
    file.read(&byte, 1);
    byte ^= 0x5a;
    file.seekp(middle);
    file.write(&byte, 1);
    ASSERT_TRUE(file.good());
  }
  auto shard = OpenOrDie(dir, Shard::Mode::kReadOnly);
  ASSERT_NE(shard, nullptr);
  EXPECT_THAT(shard->ReadTokens("books", id),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("document books/" + HexId(id))));
  int lost = 0;
  for (int64_t chunk = 0; chunk < 8; ++chunk) {
    absl::StatusOr<std::vector<uint32_t>> slice =
        shard->ReadTokens("books", id, chunk * 1024, 1024);
    if (slice.ok()) {
      EXPECT_EQ(*slice, Slice(tokens, chunk * 1024, 1024));
    } else {
      EXPECT_THAT(slice, StatusIs(absl::StatusCode::kDataLoss));
      ++lost;
    }
  }
  EXPECT_EQ(lost, 1);
}

TEST(ShardChunksTest, ANegativeChunkSizeIsRefused) {
  EXPECT_THAT(
      Shard::Open(prolong::testing::MakeTempDir() + "/shard", Shard::Mode::kReadWrite, Chunks(-1)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk_tokens")));
}

}  // namespace
}  // namespace prolong::store
