#include "common/cli.h"

#include <cstdlib>
#include <fstream>
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

std::string WriteTemp(const std::string& name, const std::string& contents) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir == nullptr ? "/tmp" : dir) + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

TEST(CliTest, AuthTokenFileIsReadTrimmed) {
  ServerOptions options;
  std::string token;
  const std::string path = WriteTemp("token", "s3cret \n");
  std::vector<const char*> args = {"service", "--auth-token-file", path.c_str()};
  CLI::App app("a test service");
  AddAuthTokenFlag(app, token);
  EXPECT_EQ(ParseServiceCommandLine(app, options, static_cast<int>(args.size()), args.data()),
            std::nullopt);
  EXPECT_EQ(token, "s3cret");
}

TEST(CliTest, EmptyAuthTokenFileFailsNamingTheFlag) {
  ServerOptions options;
  std::string token;
  const std::string path = WriteTemp("empty-token", "\n");
  std::vector<const char*> args = {"service", "--auth-token-file", path.c_str()};
  CLI::App app("a test service");
  AddAuthTokenFlag(app, token);
  testing::internal::CaptureStderr();
  const std::optional<int> exit_code =
      ParseServiceCommandLine(app, options, static_cast<int>(args.size()), args.data());
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(exit_code.has_value());
  EXPECT_NE(*exit_code, 0);
  EXPECT_NE(err.find("--auth-token-file"), std::string::npos) << err;
  EXPECT_NE(err.find("empty"), std::string::npos) << err;
}

TEST(CliTest, ClientSecurityFlagsDefaultFromTheEnvironment) {
  const std::string token = WriteTemp("env-token", "t");
  const std::string ca = WriteTemp("ca.pem", "-----BEGIN CERTIFICATE-----\n");
  setenv("PROLONG_TOKEN_FILE", token.c_str(), 1);
  ClientSecurityFiles files;
  CLI::App app("a test client");
  ConfigureCli(app);
  AddClientSecurityFlags(app, files, "", /*with_token=*/true, /*from_environment=*/true);
  std::vector<const char*> args = {"client", "--tls-ca", ca.c_str()};
  EXPECT_EQ(ParseCommandLine(app, static_cast<int>(args.size()), args.data()), std::nullopt);
  unsetenv("PROLONG_TOKEN_FILE");
  EXPECT_EQ(files.tls_ca, ca);
  EXPECT_EQ(files.token_file, token);
  EXPECT_EQ(files.tls_cert, "");
}

TEST(CliTest, ClientSecurityFlagsTakeTheirPrefix) {
  ClientSecurityFiles files;
  CLI::App app("a test service");
  ConfigureCli(app);
  AddClientSecurityFlags(app, files, "client-", /*with_token=*/false, /*from_environment=*/false);
  EXPECT_NE(app.get_option_no_throw("--client-tls-ca"), nullptr);
  EXPECT_NE(app.get_option_no_throw("--client-tls-key"), nullptr);
  EXPECT_EQ(app.get_option_no_throw("--client-token-file"), nullptr);
}

}  // namespace
}  // namespace prolong
