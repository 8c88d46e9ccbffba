#include "common/rpc_metrics.h"

#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/support/interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"

namespace prolong {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

struct MethodLabels {
  std::string service;
  std::string method;
};

// "/pkg.Service/Method" -> {"pkg.Service", "Method"}. Methods the process does not serve (a
// client may send any name) share one label value, so a scanner cannot grow the label set.
MethodLabels LabelsFor(const char* full_method) {
  absl::string_view name = full_method == nullptr ? "" : full_method;
  absl::ConsumePrefix(&name, "/");
  const size_t slash = name.find('/');
  if (slash != absl::string_view::npos) {
    MethodLabels labels{std::string(name.substr(0, slash)), std::string(name.substr(slash + 1))};
    // gRPC's built-in health service is not in the protobuf pool (it uses its own codec).
    if (labels.service == "grpc.health.v1.Health" ||
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            labels.service + "." + labels.method) != nullptr) {
      return labels;
    }
  }
  return {"unknown", "unknown"};
}

class RpcMetrics {
 public:
  explicit RpcMetrics(prometheus::Registry& registry)
      : started_(prometheus::BuildCounter()
                     .Name("prolong_rpc_server_started_total")
                     .Help("RPCs started on the server.")
                     .Register(registry)),
        handled_(prometheus::BuildCounter()
                     .Name("prolong_rpc_server_handled_total")
                     .Help("RPCs completed on the server, by status code.")
                     .Register(registry)),
        seconds_(prometheus::BuildHistogram()
                     .Name("prolong_rpc_server_handling_seconds")
                     .Help("Time from the start of an RPC to its status, in seconds.")
                     .Register(registry)) {}

  void Started(const MethodLabels& labels) {
    started_.Add({{"grpc_service", labels.service}, {"grpc_method", labels.method}}).Increment();
  }

  void Handled(const MethodLabels& labels, grpc::StatusCode code, absl::Duration elapsed) {
    const int index = static_cast<int>(code);
    const char* code_name = index >= 0 && index < 17 ? kCodeNames[index] : "UNKNOWN";
    handled_
        .Add({{"grpc_service", labels.service},
              {"grpc_method", labels.method},
              {"grpc_code", code_name}})
        .Increment();
    // 0.5 ms to ~33 min: unary calls and the long server streams that feed training.
    static const auto* kBuckets =
        new prometheus::Histogram::BucketBoundaries(prometheus::Histogram::BucketBoundaries{
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
            300, 600, 2000});
    seconds_.Add({{"grpc_service", labels.service}, {"grpc_method", labels.method}}, *kBuckets)
        .Observe(absl::ToDoubleSeconds(elapsed));
  }

 private:
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& seconds_;
};

// One per call. The call is recorded just before its status goes out, so a client that has its
// answer also sees it counted; a call that ends without sending a status (the client went away)
// is recorded as CANCELLED when gRPC destroys the interceptor.
class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(RpcMetrics& metrics, MethodLabels labels)
      : metrics_(metrics), labels_(std::move(labels)), start_(absl::Now()) {
    metrics_.Started(labels_);
  }

  ~RpcMetricsInterceptor() override {
    if (!recorded_) metrics_.Handled(labels_, grpc::StatusCode::CANCELLED, absl::Now() - start_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.Handled(labels_, methods->GetSendStatus().error_code(), absl::Now() - start_);
      recorded_ = true;
    }
    methods->Proceed();
  }

 private:
  RpcMetrics& metrics_;
  const MethodLabels labels_;
  const absl::Time start_;
  bool recorded_ = false;
};

class RpcMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(prometheus::Registry& registry) : metrics_(registry) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcMetricsInterceptor(metrics_, LabelsFor(info->method()));
  }

 private:
  RpcMetrics metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewRpcMetricsInterceptorFactory(prometheus::Registry& registry) {
  return std::make_unique<RpcMetricsInterceptorFactory>(registry);
}

}  // namespace prolong
