#include "common/metrics_endpoint.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "prometheus/text_serializer.h"

namespace prolong {
namespace {

// A scrape that has not sent its request line by then is dropped, so one stuck client cannot
// hold the endpoint for long.
constexpr absl::Duration kRequestTimeout = absl::Seconds(2);

void SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;  // The scraper went away; nothing to do.
    data.remove_prefix(n);
  }
}

void Respond(int fd, absl::string_view status, absl::string_view content_type,
             absl::string_view body) {
  SendAll(fd, absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", content_type,
                           "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n"));
  SendAll(fd, body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const HostPort& address, std::vector<std::shared_ptr<prometheus::Collectable>> sources) {
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  endpoint->address_ = address;
  endpoint->sources_ = std::move(sources);
  absl::StatusOr<int> fd = ListenTcp(&endpoint->address_);
  if (!fd.ok()) return fd.status();
  endpoint->listen_fd_ = *fd;
  if (pipe2(endpoint->wake_fds_, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  endpoint->thread_ = std::thread([raw = endpoint.get()] { raw->Serve(); });
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (thread_.joinable()) {
    [[maybe_unused]] ssize_t written = write(wake_fds_[1], "x", 1);
    thread_.join();
  }
  for (int fd : {listen_fd_, wake_fds_[0], wake_fds_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void MetricsEndpoint::Serve() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int connection = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    Answer(connection);
    close(connection);
  }
}

void MetricsEndpoint::Answer(int connection) const {
  const absl::Time deadline = absl::Now() + kRequestTimeout;
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd fds[2] = {{connection, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    if (ms <= 0 || poll(fds, 2, static_cast<int>(ms)) <= 0 || fds[1].revents != 0) return;
    const ssize_t n = recv(connection, buffer, sizeof(buffer), 0);
    if (n <= 0) return;
    request.append(buffer, n);
  }
  if (!absl::StartsWith(request, "GET ")) {
    Respond(connection, "405 Method Not Allowed", "text/plain", "only GET\n");
    return;
  }
  const absl::string_view target = absl::string_view(request).substr(4, request.find(' ', 4) - 4);
  if (target != "/metrics" && !absl::StartsWith(target, "/metrics?")) {
    Respond(connection, "404 Not Found", "text/plain", "metrics are at /metrics\n");
    return;
  }
  std::vector<prometheus::MetricFamily> families;
  for (const auto& source : sources_) {
    std::vector<prometheus::MetricFamily> collected = source->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  Respond(connection, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
          prometheus::TextSerializer().Serialize(families));
}

}  // namespace prolong
