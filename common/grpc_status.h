// Conversions between absl::Status (used inside prolong) and grpc::Status (on the wire).
// The canonical codes are the same numbers in both.
#ifndef PROLONG_COMMON_GRPC_STATUS_H_
#define PROLONG_COMMON_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace prolong {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace prolong

#endif  // PROLONG_COMMON_GRPC_STATUS_H_
