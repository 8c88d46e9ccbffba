#include "common/metrics_endpoint.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;

class MetricsEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus::BuildCounter()
        .Name("prolong_test_events_total")
        .Help("Events seen by the test.")
        .Register(*registry_)
        .Add({{"kind", "scrape"}})
        .Increment(7);
    absl::StatusOr<std::unique_ptr<MetricsEndpoint>> started =
        MetricsEndpoint::Start({"127.0.0.1", 0}, {registry_});
    ASSERT_OK(started);
    endpoint_ = *std::move(started);
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<MetricsEndpoint> endpoint_;
};

TEST_F(MetricsEndpointTest, ServesTheTextFormatOnMetrics) {
  EXPECT_GT(endpoint_->address().port, 0);
  absl::StatusOr<std::string> body = HttpGet(endpoint_->address().ToString(), "/metrics");
  ASSERT_OK(body);
  EXPECT_TRUE(absl::StrContains(*body, "# TYPE prolong_test_events_total counter\n"));
  EXPECT_TRUE(absl::StrContains(*body, "prolong_test_events_total{kind=\"scrape\"} 7\n"));
}

TEST_F(MetricsEndpointTest, ScrapesSeeNewValues) {
  for (int i = 1; i <= 3; ++i) {
    prometheus::BuildCounter()
        .Name("prolong_test_events_total")
        .Help("Events seen by the test.")
        .Register(*registry_)
        .Add({{"kind", "scrape"}})
        .Increment();
    absl::StatusOr<std::string> body = HttpGet(endpoint_->address().ToString(), "/metrics");
    ASSERT_OK(body);
    EXPECT_TRUE(absl::StrContains(
        *body, "prolong_test_events_total{kind=\"scrape\"} " + std::to_string(7 + i) + "\n"));
  }
}

TEST_F(MetricsEndpointTest, OtherPathsAreNotFound) {
  EXPECT_THAT(HttpGet(endpoint_->address().ToString(), "/"), StatusIs(absl::StatusCode::kInternal));
  EXPECT_OK(HttpGet(endpoint_->address().ToString(), "/metrics?name[]=x"));
}

TEST_F(MetricsEndpointTest, AnAddressInUseIsRefused) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> second =
      MetricsEndpoint::Start(endpoint_->address(), {registry_});
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kFailedPrecondition,
                               endpoint_->address().ToString() + ": address already in use"));
}

TEST_F(MetricsEndpointTest, ASilentClientDoesNotBlockStopping) {
  // A client that connects and never sends a request.
  absl::StatusOr<std::string> ignored =
      HttpGet(endpoint_->address().ToString(), "/metrics", absl::Milliseconds(1));
  const std::string address = endpoint_->address().ToString();
  const absl::Time start = absl::Now();
  endpoint_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_THAT(HttpGet(address, "/metrics"), StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace prolong
