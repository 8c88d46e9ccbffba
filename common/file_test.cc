#include "common/file.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
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

// A write that runs out of room (the file-size limit here; a full disk or quota alike): the
// error names the file and says why, the old contents stay, and no temporary is left.
TEST(FileTest, AFullDiskIsResourceExhaustedAndKeepsTheOldFile) {
  const std::string dir = TempDir();
  const std::string path = dir + "/trainer_state.json";
  ASSERT_OK(WriteFileAtomically(path, "old"));

  struct rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &limit), 0);
  const struct rlimit full = {4096, limit.rlim_max};
  void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);  // EFBIG rather than a signal
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  const absl::Status written = WriteFileAtomically(path, std::string(10000, 'x'));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  signal(SIGXFSZ, handler);

  EXPECT_THAT(written, StatusIs(absl::StatusCode::kResourceExhausted,
                                path + ": cannot write: File too large"));
  EXPECT_EQ(*ReadFile(path), "old");
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().string(), path);
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

}  // namespace
}  // namespace prolong
