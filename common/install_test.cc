#include "common/install.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ProlongHomeTest, PrefersProlongHomeThenHome) {
  setenv("PROLONG_HOME", "/srv/prolong", 1);
  setenv("HOME", "/home/operator", 1);
  EXPECT_EQ(ProlongHome(), "/srv/prolong");
  setenv("PROLONG_HOME", "", 1);
  EXPECT_EQ(ProlongHome(), "/home/operator/.prolong");
  unsetenv("PROLONG_HOME");
  EXPECT_EQ(ProlongHome(), "/home/operator/.prolong");
  unsetenv("HOME");
  EXPECT_EQ(ProlongHome(), "./.prolong");
}

TEST(FindBinaryTest, AGivenPathMustBeAnExecutable) {
  const std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp";
  const std::string plain = dir + "/not-executable";
  std::ofstream(plain) << "data";
  EXPECT_THAT(
      FindBinary("trainer", plain, "--trainer-binary"),
      StatusIs(absl::StatusCode::kNotFound, "--trainer-binary: " + plain + ": not an executable"));
  EXPECT_THAT(FindBinary("trainer", dir, "--trainer-binary"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not an executable")));
  EXPECT_EQ(*FindBinary("trainer", "/bin/sh", "--trainer-binary"), "/bin/sh");
}

TEST(FindBinaryTest, LooksBesideTheRunningBinary) {
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(length, 0);
  EXPECT_EQ(*FindBinary("install_test", "", "--bin-dir"), std::string(self, length));
  EXPECT_THAT(FindBinary("no-such-binary", "", "--bin-dir"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("no no-such-binary binary at "),
                             HasSubstr("/no-such-binary or "), HasSubstr("; pass --bin-dir"))));
}

}  // namespace
}  // namespace prolong
