// The one way every prolong process serves gRPC: bound address (port 0 allowed), gRPC health
// checking (grpc.health.v1) and server reflection, per-method RPC metrics, a Prometheus /metrics
// endpoint with process metrics, and graceful shutdown on SIGTERM or SIGINT.
#ifndef PROLONG_COMMON_SERVER_H_
#define PROLONG_COMMON_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/security.h"
#include "grpcpp/server.h"
#include "prometheus/registry.h"

namespace prolong {

class MetricsEndpoint;

struct ServerOptions {
  // Names the process in logs, in its ready line and in prolong_build_info: "scheduler".
  std::string component;
  // gRPC listen address, host:port; port 0 picks a free port.
  std::string address = "127.0.0.1:0";
  // /metrics listen address, host:port; port 0 picks a free port; empty: no /metrics.
  std::string metrics_address = "127.0.0.1:0";
  // How long in-flight calls may take to finish once shutdown starts; then they are cancelled.
  absl::Duration shutdown_grace = absl::Seconds(2);
  // Largest request accepted (ingest sends whole documents).
  int max_receive_message_bytes = 256 << 20;
  // With a certificate and key, gRPC is served over TLS only; with a client CA too, only to
  // clients presenting a certificate it signed (common/security.h). /metrics stays plain HTTP.
  ServerTlsFiles tls;
};

// A gRPC service to host. `name` is its full name ("prolong.v1.Scheduler"), which health checks
// ask about; Hosted<prolong::v1::Scheduler>(&impl) fills it in.
struct HostedService {
  grpc::Service* service;
  std::string name;
};

template <typename GrpcService>
HostedService Hosted(grpc::Service* service) {
  return {service, GrpcService::service_full_name()};
}

class Server {
 public:
  // Binds and starts serving. INVALID_ARGUMENT for a malformed address, FAILED_PRECONDITION
  // for an address in use; ServerCredentials' errors for options.tls. `registry` holds the
  // services' own metrics; it is exposed with the RPC and process metrics on /metrics.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, const std::vector<HostedService>& services,
      std::shared_ptr<prometheus::Registry> registry);

  ~Server();  // Shuts down if not done yet.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound addresses, with the real ports.
  const std::string& address() const { return address_; }
  const std::string& metrics_address() const { return metrics_address_; }  // "" if none.

  // Reports NOT_SERVING on every health check, lets in-flight calls finish within the grace
  // period, cancels the rest and stops /metrics. Idempotent.
  void Shutdown();

 private:
  Server() = default;

  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsEndpoint> metrics_endpoint_;
  std::string address_;
  std::string metrics_address_;
  bool shut_down_ = false;
};

// The main loop of a service binary: starts the server, prints one ready line on stdout
// ("scheduler listening: grpc=127.0.0.1:7400 metrics=127.0.0.1:7401"), waits for SIGTERM or
// SIGINT, shuts down gracefully. Returns the exit code: 0 after a signal, 1 (with one line on
// stderr) if the server cannot start. A second signal during shutdown exits at once.
// `on_started`, if given, runs once the server listens, before the ready line (a scheduler
// tells its workers the real address).
int RunServerUntilSignal(const ServerOptions& options, const std::vector<HostedService>& services,
                         std::shared_ptr<prometheus::Registry> registry,
                         const std::function<void(const Server&)>& on_started = nullptr);

}  // namespace prolong

#endif  // PROLONG_COMMON_SERVER_H_
