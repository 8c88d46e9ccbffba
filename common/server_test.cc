#include "common/server.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "prolong/v1/scheduler.grpc.pb.h"

namespace prolong {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::prolong::testing::StatusIs;
using ::testing::StartsWith;

ServerOptions TestOptions() {
  ServerOptions options;
  options.component = "test";
  options.address = "127.0.0.1:0";
  options.metrics_address = "127.0.0.1:0";
  options.shutdown_grace = absl::Milliseconds(200);
  return options;
}

grpc::Status CheckHealth(const std::string& address, const std::string& service,
                         HealthCheckResponse* response) {
  auto stub = Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  return stub->Check(&context, request, response);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Server>> started =
        Server::Start(TestOptions(), {Hosted<v1::Scheduler>(&scheduler_)},
                      std::make_shared<prometheus::Registry>());
    ASSERT_OK(started);
    server_ = *std::move(started);
  }

  v1::Scheduler::Service scheduler_;  // Every method answers UNIMPLEMENTED.
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, BindsRealPortsForPortZero) {
  absl::StatusOr<HostPort> grpc_address = ParseHostPort(server_->address(), "address");
  absl::StatusOr<HostPort> metrics_address = ParseHostPort(server_->metrics_address(), "metrics");
  ASSERT_OK(grpc_address);
  ASSERT_OK(metrics_address);
  EXPECT_GT(grpc_address->port, 0);
  EXPECT_GT(metrics_address->port, 0);
  EXPECT_NE(grpc_address->port, metrics_address->port);
}

TEST_F(ServerTest, ServesHealthForTheServerAndEachService) {
  HealthCheckResponse response;
  ASSERT_TRUE(CheckHealth(server_->address(), "", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(CheckHealth(server_->address(), "prolong.v1.Scheduler", &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(CheckHealth(server_->address(), "prolong.v1.Nope", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, UnimplementedMethodsAnswerUnimplementedAndAreCounted) {
  auto stub = v1::Scheduler::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    v1::Run run;
    EXPECT_EQ(stub->GetRun(&context, request, &run).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  absl::StatusOr<std::string> metrics = HttpGet(server_->metrics_address(), "/metrics");
  ASSERT_OK(metrics);
  EXPECT_TRUE(absl::StrContains(
      *metrics,
      "prolong_rpc_server_handled_total{grpc_code=\"UNIMPLEMENTED\",grpc_method=\"GetRun\","
      "grpc_service=\"prolong.v1.Scheduler\"} 3"))
      << *metrics;
  EXPECT_TRUE(absl::StrContains(*metrics,
                                "prolong_rpc_server_started_total{grpc_method=\"GetRun\","
                                "grpc_service=\"prolong.v1.Scheduler\"} 3"));
  EXPECT_TRUE(absl::StrContains(*metrics,
                                "prolong_rpc_server_handling_seconds_count{grpc_method=\"GetRun\","
                                "grpc_service=\"prolong.v1.Scheduler\"} 3"));
  EXPECT_TRUE(
      absl::StrContains(*metrics, "prolong_build_info{component=\"test\",version=\"0.1.0\"} 1"));
  EXPECT_TRUE(absl::StrContains(*metrics, "process_resident_memory_bytes "));
}

TEST_F(ServerTest, MethodsNotServedShareOneLabel) {
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  // A client asking for a service this server does not host.
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  generic.UnaryCall(&context, "/scanner.Probe/Random123", grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu);
                      status = s;
                      done = true;
                      cv.notify_one();
                    });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  absl::StatusOr<std::string> metrics = HttpGet(server_->metrics_address(), "/metrics");
  ASSERT_OK(metrics);
  EXPECT_FALSE(absl::StrContains(*metrics, "Random123"));
}

TEST_F(ServerTest, ShutdownStopsServingAndIsIdempotent) {
  const std::string address = server_->address();
  const std::string metrics_address = server_->metrics_address();
  server_->Shutdown();
  server_->Shutdown();
  HealthCheckResponse response;
  EXPECT_EQ(CheckHealth(address, "", &response).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(HttpGet(metrics_address, "/metrics"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(ServerTest, SecondServerOnTheSamePortFailsWithOneClearReason) {
  ServerOptions options = TestOptions();
  options.address = server_->address();
  absl::StatusOr<std::unique_ptr<Server>> second =
      Server::Start(options, {}, std::make_shared<prometheus::Registry>());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition,
                               server_->address() + ": address already in use"));

  options = TestOptions();
  options.metrics_address = server_->metrics_address();
  second = Server::Start(options, {}, std::make_shared<prometheus::Registry>());
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition,
                               server_->metrics_address() + ": address already in use"));
}

TEST(ServerStartTest, MalformedAddressesAreInvalidArguments) {
  ServerOptions options = TestOptions();
  options.address = "localhost";
  EXPECT_THAT(Server::Start(options, {}, std::make_shared<prometheus::Registry>()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options = TestOptions();
  options.metrics_address = "127.0.0.1:99999";
  EXPECT_THAT(Server::Start(options, {}, std::make_shared<prometheus::Registry>()),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("metrics_address: ")));
}

TEST(ServerStartTest, MetricsCanBeTurnedOff) {
  ServerOptions options = TestOptions();
  options.metrics_address = "";
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, {}, std::make_shared<prometheus::Registry>());
  ASSERT_OK(server);
  EXPECT_EQ((*server)->metrics_address(), "");
  HealthCheckResponse response;
  EXPECT_TRUE(CheckHealth((*server)->address(), "", &response).ok());
}

}  // namespace
}  // namespace prolong
