// Per-method gRPC server metrics, recorded by an interceptor on every call:
//   prolong_rpc_server_started_total{grpc_service, grpc_method}
//   prolong_rpc_server_handled_total{grpc_service, grpc_method, grpc_code}
//   prolong_rpc_server_handling_seconds{grpc_service, grpc_method} (histogram)
// The names follow the go-grpc-prometheus conventions under the prolong_ prefix.
#ifndef PROLONG_COMMON_RPC_METRICS_H_
#define PROLONG_COMMON_RPC_METRICS_H_

#include <memory>

#include "grpcpp/support/server_interceptor.h"
#include "prometheus/registry.h"

namespace prolong {

// Install with ServerBuilder::experimental().SetInterceptorCreators. Thread-safe.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewRpcMetricsInterceptorFactory(prometheus::Registry& registry);

}  // namespace prolong

#endif  // PROLONG_COMMON_RPC_METRICS_H_
