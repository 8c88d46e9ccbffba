#include "common/address.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseHostPortTest, AcceptsHostnamesIpv4AndBracketedIpv6) {
  absl::StatusOr<HostPort> parsed = ParseHostPort("127.0.0.1:7400", "address");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_EQ(parsed->port, 7400);
  EXPECT_EQ(parsed->ToString(), "127.0.0.1:7400");

  parsed = ParseHostPort("[::1]:0", "address");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->host, "::1");
  EXPECT_EQ(parsed->port, 0);
  EXPECT_EQ(parsed->ToString(), "[::1]:0");

  parsed = ParseHostPort("localhost:65535", "address");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->port, 65535);
}

TEST(ParseHostPortTest, RejectsMalformedAddressesNamingTheField) {
  for (const char* bad : {"7400", "127.0.0.1", ":7400", "host:", "host:65536", "host:-1",
                          "host:http", "::1:80", "[::1]80", "[::1"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(bad, "metrics_address");
    EXPECT_THAT(parsed,
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("metrics_address: '")))
        << bad;
  }
}

TEST(CheckCanListenTest, ReportsAnAddressInUse) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const HostPort taken{"127.0.0.1", ntohs(addr.sin_port)};

  EXPECT_THAT(CheckCanListen(taken), StatusIs(absl::StatusCode::kFailedPrecondition,
                                              taken.ToString() + ": address already in use"));
  close(fd);
  EXPECT_OK(CheckCanListen(taken));
  EXPECT_OK(CheckCanListen({"127.0.0.1", 0}));
}

}  // namespace
}  // namespace prolong

namespace prolong {
namespace {

TEST(ListenTcpTest, PortZeroGetsARealPortThatConnectReaches) {
  HostPort address{"127.0.0.1", 0};
  absl::StatusOr<int> listener = ListenTcp(&address);
  ASSERT_OK(listener);
  EXPECT_GT(address.port, 0);
  absl::StatusOr<int> client = ConnectTcp(address);
  ASSERT_OK(client);
  close(*client);

  HostPort same = address;
  EXPECT_EQ(ListenTcp(&same).status().message(), address.ToString() + ": address already in use");
  close(*listener);
  EXPECT_THAT(ConnectTcp(address), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace prolong
