#include "common/grpc_status.h"

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong {
namespace {

using ::prolong::testing::StatusIs;

TEST(GrpcStatusTest, KeepsCodeAndMessageBothWays) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why");
    const grpc::Status wire = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_EQ(wire.error_message(), code == 0 ? "" : "why");
    EXPECT_EQ(FromGrpcStatus(wire), status);
  }
}

TEST(GrpcStatusTest, NamedCodesAgree) {
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("seq_len: must be >= 2")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "run r1")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "")),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

}  // namespace
}  // namespace prolong
