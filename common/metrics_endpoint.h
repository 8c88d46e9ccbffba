// Serves Prometheus' text format on GET /metrics from a set of collectables.
//
// Ours rather than prometheus-cpp's civetweb Exposer: civetweb starts its threads with a small
// fixed stack, and in a process that links LibTorch (whose libraries carry ~100 KB of static
// TLS) thread creation then fails. One thread with a default stack serves scrapes one at a
// time, which is all Prometheus needs.
#ifndef PROLONG_COMMON_METRICS_ENDPOINT_H_
#define PROLONG_COMMON_METRICS_ENDPOINT_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/address.h"
#include "prometheus/collectable.h"

namespace prolong {

class MetricsEndpoint {
 public:
  // Listens on `address` (port 0: any free port) and serves until destroyed.
  // FAILED_PRECONDITION if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const HostPort& address, std::vector<std::shared_ptr<prometheus::Collectable>> sources);

  ~MetricsEndpoint();  // Stops at once, closing the socket.
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // The bound address, with the real port.
  const HostPort& address() const { return address_; }

 private:
  MetricsEndpoint() = default;
  void Serve();
  void Answer(int connection) const;

  HostPort address_;
  std::vector<std::shared_ptr<prometheus::Collectable>> sources_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // Written to on destruction to end Serve().
  std::thread thread_;
};

}  // namespace prolong

#endif  // PROLONG_COMMON_METRICS_ENDPOINT_H_
