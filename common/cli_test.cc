#include "common/cli.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace prolong {
namespace {

std::optional<int> Parse(ServerOptions& options, std::vector<const char*> args) {
  args.insert(args.begin(), "service");
  CLI::App app("a test service");
  return ParseServiceCommandLine(app, options, static_cast<int>(args.size()), args.data());
}

TEST(CliTest, ServerFlagsSetTheOptions) {
  ServerOptions options;
  EXPECT_EQ(Parse(options, {"--address", "0.0.0.0:7400", "--metrics-address=off",
                            "--shutdown-grace-seconds", "0.5"}),
            std::nullopt);
  EXPECT_EQ(options.address, "0.0.0.0:7400");
  EXPECT_EQ(options.metrics_address, "");
  EXPECT_EQ(options.shutdown_grace, absl::Milliseconds(500));
}

TEST(CliTest, DefaultsStayWhenFlagsAreAbsent) {
  ServerOptions options;
  options.address = "127.0.0.1:7410";
  EXPECT_EQ(Parse(options, {}), std::nullopt);
  EXPECT_EQ(options.address, "127.0.0.1:7410");
  EXPECT_EQ(options.shutdown_grace, absl::Seconds(2));
}

TEST(CliTest, UnknownFlagPrintsUsageAndFails) {
  ServerOptions options;
  testing::internal::CaptureStderr();
  const std::optional<int> exit_code = Parse(options, {"--adress", "x:1"});
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_NE(*exit_code, 0);
  EXPECT_NE(err.find("--adress"), std::string::npos) << err;
  EXPECT_NE(err.find("--metrics-address"), std::string::npos) << "usage expected: " << err;
}

TEST(CliTest, NegativeGraceIsRejected) {
  ServerOptions options;
  testing::internal::CaptureStderr();
  const std::optional<int> exit_code = Parse(options, {"--shutdown-grace-seconds", "-1"});
  testing::internal::GetCapturedStderr();
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_NE(*exit_code, 0);
}

TEST(CliTest, HelpExitsZero) {
  ServerOptions options;
  testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(options, {"--help"}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("--address"), std::string::npos);
}

}  // namespace
}  // namespace prolong
