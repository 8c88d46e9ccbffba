#include "datamixer/store/store.h"

#include <string>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::store {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

const TokenizerIdentity kLlama{"aaaa1111bbbb2222", 128256};
const TokenizerIdentity kOther{"cccc3333dddd4444", 32000};

TEST(StoreTest, RemembersItsTokenizerAndRefusesAnother) {
  const std::string dir = prolong::testing::MakeTempDir() + "/store";
  {
    auto store = Store::OpenForWriting(dir, kLlama);
    ASSERT_OK(store);
    ASSERT_OK((*store)->shard().AddBatch({Document{"web", "w", {1, 2, 3}, ""}}));
  }
  {
    auto again = Store::OpenForWriting(dir, kLlama);
    ASSERT_OK(again);
  }
  absl::StatusOr<std::unique_ptr<Store>> other = Store::OpenForWriting(dir, kOther);
  EXPECT_THAT(other, StatusIs(absl::StatusCode::kFailedPrecondition,
                              HasSubstr("built with tokenizer aaaa1111bbbb (vocabulary 128256), "
                                        "not this one, cccc3333dddd (vocabulary 32000)")));

  auto reader = Store::OpenForReading(dir);
  ASSERT_OK(reader);
  EXPECT_EQ((*reader)->tokenizer().fingerprint, kLlama.fingerprint);
  EXPECT_EQ((*reader)->tokenizer().vocab_size, kLlama.vocab_size);
  int documents = 0;
  ASSERT_OK((*reader)->shard().ScanIndex("", [&](const IndexEntry&) { ++documents; }));
  EXPECT_EQ(documents, 1);
}

TEST(StoreTest, ReadingSomethingElseIsNotFound) {
  const std::string dir = prolong::testing::MakeTempDir();
  absl::StatusOr<std::unique_ptr<Store>> store = Store::OpenForReading(dir);
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kNotFound, dir + ": not a store (no MANIFEST)"));
}

}  // namespace
}  // namespace prolong::store
