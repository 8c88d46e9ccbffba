#include "datamixer/store/store.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::store {
namespace {

const TokenizerIdentity kLlama{"aaaa1111bbbb2222", 128256};
const TokenizerIdentity kOther{"cccc3333dddd4444", 32000};

TEST(StoreTest, RemembersItsTokenizerAndRefusesAnother) {
  const std::string dir = prolong::testing::MakeTempDir() + "/store";
  {
    auto store = Store::OpenForWriting(dir, kLlama);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->shard().AddBatch({Document{"web", "w", {1, 2, 3}, ""}}).ok());
  }
  {
    auto again = Store::OpenForWriting(dir, kLlama);
    ASSERT_TRUE(again.ok()) << again.status();
  }
  absl::StatusOr<std::unique_ptr<Store>> other = Store::OpenForWriting(dir, kOther);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(other.status().message(),
                                "built with tokenizer aaaa1111bbbb (vocabulary 128256), not this "
                                "one, cccc3333dddd (vocabulary 32000)"))
      << other.status();

  auto reader = Store::OpenForReading(dir);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->tokenizer().fingerprint, kLlama.fingerprint);
  EXPECT_EQ((*reader)->tokenizer().vocab_size, kLlama.vocab_size);
  int documents = 0;
  ASSERT_TRUE((*reader)->shard().ScanIndex("", [&](const IndexEntry&) { ++documents; }).ok());
  EXPECT_EQ(documents, 1);
}

TEST(StoreTest, ReadingSomethingElseIsNotFound) {
  const std::string dir = prolong::testing::MakeTempDir();
  absl::StatusOr<std::unique_ptr<Store>> store = Store::OpenForReading(dir);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.status().message(), dir + ": not a store (no MANIFEST)");
}

}  // namespace
}  // namespace prolong::store
