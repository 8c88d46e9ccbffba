#include "common/file.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;

std::string TempDir() {
  std::string pattern =
      std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") +
      "/file-XXXXXX";
  return mkdtemp(pattern.data());
}

TEST(FileTest, WriteAtomicallyThenReadBack) {
  const std::string path = TempDir() + "/MANIFEST";
  ASSERT_OK(WriteFileAtomically(path, std::string("one\0two", 7)));
  EXPECT_EQ(*ReadFile(path), std::string("one\0two", 7));
  ASSERT_OK(WriteFileAtomically(path, "replaced"));
  EXPECT_EQ(*ReadFile(path), "replaced");
  struct stat info;
  EXPECT_NE(stat((path + ".tmp").c_str(), &info), 0) << "the temporary file is renamed away";
}

TEST(FileTest, ErrorsNameThePath) {
  absl::StatusOr<std::string> missing = ReadFile("/no/such/file");
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound, "/no/such/file: cannot open"));
  EXPECT_THAT(WriteFileAtomically("/no/such/dir/f", "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace prolong
