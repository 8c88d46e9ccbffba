#include "common/sha256.h"

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

std::string Hex(absl::string_view text) {
  Sha256 hasher;
  hasher.Update(text);
  return absl::BytesToHexString(hasher.Finish());
}

TEST(Sha256Test, MatchesTheStandardVectors) {
  EXPECT_EQ(Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  Sha256 hasher;
  hasher.Update("a");
  hasher.Update("bc", 2);
  EXPECT_EQ(absl::BytesToHexString(hasher.Finish()), Hex("abc"));
}

}  // namespace
}  // namespace prolong
