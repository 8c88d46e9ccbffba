#include "common/http_get.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/address.h"
#include "common/status_macros.h"

namespace prolong {
namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status AwaitReady(int fd, short events, absl::Time deadline) {
  pollfd p{fd, events, 0};
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms <= 0 || poll(&p, 1, static_cast<int>(ms)) <= 0) {
    return absl::DeadlineExceededError("HTTP GET timed out");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> HttpGet(absl::string_view address, absl::string_view path,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(HostPort host_port, ParseHostPort(address, "address"));
  ASSIGN_OR_RETURN(int fd, ConnectTcp(host_port));
  absl::Cleanup close_fd = [fd] { close(fd); };

  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address, "\r\nConnection: close\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    RETURN_IF_ERROR(AwaitReady(fd, POLLOUT, deadline));
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0) return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    sent += n;
  }
  std::string response;
  char buffer[16384];
  while (true) {
    RETURN_IF_ERROR(AwaitReady(fd, POLLIN, deadline));
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0) return absl::UnavailableError(absl::StrCat("recv: ", std::strerror(errno)));
    if (n == 0) break;
    response.append(buffer, n);
  }

  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos) return absl::InternalError("malformed HTTP response");
  const absl::string_view headers = absl::string_view(response).substr(0, header_end);
  std::string body = response.substr(header_end + 4);
  const std::vector<absl::string_view> status_line =
      absl::StrSplit(headers.substr(0, headers.find("\r\n")), absl::MaxSplits(' ', 2));
  int code = 0;
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &code)) {
    return absl::InternalError("malformed HTTP status line");
  }
  if (code != 200) {
    return absl::InternalError(absl::StrCat("GET ", path, ": HTTP ", code));
  }
  if (absl::StrContains(absl::AsciiStrToLower(headers), "transfer-encoding: chunked")) {
    // Join the chunks: "<hex size>\r\n<data>\r\n" ... "0\r\n\r\n".
    std::string joined;
    size_t at = 0;
    while (true) {
      const size_t line_end = body.find("\r\n", at);
      if (line_end == std::string::npos) return absl::InternalError("malformed chunk");
      size_t size = 0;
      if (!absl::SimpleHexAtoi(absl::string_view(body).substr(at, line_end - at), &size)) {
        return absl::InternalError("malformed chunk size");
      }
      if (size == 0) break;
      joined.append(body, line_end + 2, size);
      at = line_end + 2 + size + 2;
    }
    body = std::move(joined);
  }
  return body;
}

}  // namespace prolong
