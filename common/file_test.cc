#include "common/file.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace prolong {
namespace {

std::string TempDir() {
  std::string pattern =
      std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
      "/file-XXXXXX";
  return mkdtemp(pattern.data());
}

TEST(FileTest, WriteAtomicallyThenReadBack) {
  const std::string path = TempDir() + "/MANIFEST";
  ASSERT_TRUE(WriteFileAtomically(path, std::string("one\0two", 7)).ok());
  EXPECT_EQ(*ReadFile(path), std::string("one\0two", 7));
  ASSERT_TRUE(WriteFileAtomically(path, "replaced").ok());
  EXPECT_EQ(*ReadFile(path), "replaced");
  struct stat info;
  EXPECT_NE(stat((path + ".tmp").c_str(), &info), 0) << "the temporary file is renamed away";
}

TEST(FileTest, ErrorsNameThePath) {
  absl::StatusOr<std::string> missing = ReadFile("/no/such/file");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "/no/such/file: cannot open");
  EXPECT_EQ(WriteFileAtomically("/no/such/dir/f", "x").code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace prolong
