#include "common/server.h"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/address.h"
#include "common/log.h"
#include "common/metrics_endpoint.h"
#include "common/process_metrics.h"
#include "common/rpc_metrics.h"
#include "common/shutdown_signal.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "grpc/support/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "prometheus/gauge.h"

namespace prolong {
namespace {

// Threads kept waiting for calls between bursts.
constexpr int kMaxIdleThreads = 32;

// gRPC's own log lines go through ours, so a process has one log format.
void ForwardGrpcLog(gpr_log_func_args* args) {
  const LogSeverity severity =
      args->severity == GPR_LOG_SEVERITY_ERROR ? LogSeverity::kError : LogSeverity::kInfo;
  internal::LogMessage(severity, args->file, args->line).stream() << "grpc: " << args->message;
}

void ConfigureGrpcOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    gpr_set_log_function(ForwardGrpcLog);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, const std::vector<HostedService>& services,
    std::shared_ptr<prometheus::Registry> registry) {
  ASSIGN_OR_RETURN(HostPort grpc_address, ParseHostPort(options.address, "address"));
  std::optional<HostPort> metrics_address;
  if (!options.metrics_address.empty()) {
    ASSIGN_OR_RETURN(metrics_address, ParseHostPort(options.metrics_address, "metrics_address"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   ServerCredentials(options.tls));
  RETURN_IF_ERROR(CheckCanListen(grpc_address));
  ConfigureGrpcOnce();

  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->registry_ = std::move(registry);
  prometheus::BuildGauge()
      .Name("prolong_build_info")
      .Help("Always 1; labels name the component and its version.")
      .Register(*server->registry_)
      .Add({{"component", options.component}, {"version", kVersion}})
      .Set(1);

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(grpc_address.ToString(), credentials, &bound_port);
  // Without this, Linux lets a second server bind the same port and steal half the calls.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // A thread that ends a call goes back to waiting for the next one only while fewer than
  // MAX_POLLERS wait (gRPC's default: 2); otherwise it exits, and under many concurrent callers
  // every call costs a thread started and ended.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, kMaxIdleThreads);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(NewRpcMetricsInterceptorFactory(*server->registry_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  for (const HostedService& hosted : services) builder.RegisterService(hosted.service);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || bound_port == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(grpc_address.ToString(), ": cannot listen (see the log above)"));
  }
  grpc_address.port = bound_port;
  server->address_ = grpc_address.ToString();
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  for (const HostedService& hosted : services) health->SetServingStatus(hosted.name, true);

  if (metrics_address.has_value()) {
    ASSIGN_OR_RETURN(
        server->metrics_endpoint_,
        MetricsEndpoint::Start(*metrics_address,
                               {server->registry_, std::make_shared<ProcessMetrics>()}));
    server->metrics_address_ = server->metrics_endpoint_->address().ToString();
  }
  return server;
}

Server::~Server() { Shutdown(); }

void Server::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
  server_->Wait();
  metrics_endpoint_.reset();
}

int RunServerUntilSignal(const ServerOptions& options, const std::vector<HostedService>& services,
                         std::shared_ptr<prometheus::Registry> registry,
                         const std::function<void(const Server&)>& on_started) {
  InstallShutdownSignalHandlers();
  // Abseil as Debian builds it (without NDEBUG) checks every Mutex acquisition for lock-order
  // cycles, in a graph shared by all threads under one lock: worth it in tests, which keep it,
  // but a serving process pays it on every call of every thread.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options, services, registry);
  if (!server.ok()) {
    std::fprintf(stderr, "%s: %s\n", options.component.c_str(),
                 std::string(server.status().message()).c_str());
    return 1;
  }
  if (on_started) on_started(**server);
  std::cout << options.component << " listening: grpc=" << (*server)->address()
            << " metrics=" << (*server)->metrics_address() << std::endl;
  const char* transport = options.tls.cert.empty()        ? "plaintext"
                          : options.tls.client_ca.empty() ? "TLS"
                                                          : "mutual TLS";
  PROLONG_LOG(INFO) << options.component << " " << kVersion << " serving gRPC (" << transport
                    << ") on " << (*server)->address() << ", /metrics on "
                    << ((*server)->metrics_address().empty() ? "(off)"
                                                             : (*server)->metrics_address());
  const int signal_number = WaitForShutdownSignal();
  PROLONG_LOG(INFO) << "received " << strsignal(signal_number) << ", shutting down";
  (*server)->Shutdown();
  PROLONG_LOG(INFO) << options.component << " stopped";
  return 0;
}

}  // namespace prolong
