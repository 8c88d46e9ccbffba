#include "common/address.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace prolong {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address, absl::string_view field) {
  const absl::string_view original = address;
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": '", original, "' ", why));
  };
  HostPort result;
  absl::string_view port;
  if (absl::ConsumePrefix(&address, "[")) {
    const size_t close = address.find("]:");
    if (close == absl::string_view::npos) return invalid("is not [ipv6]:port");
    result.host = std::string(address.substr(0, close));
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return invalid("has no port (want host:port)");
    result.host = std::string(address.substr(0, colon));
    if (result.host.find(':') != std::string::npos) {
      return invalid("has an IPv6 host without brackets (want [host]:port)");
    }
    port = address.substr(colon + 1);
  }
  if (result.host.empty()) return invalid("has an empty host");
  if (!absl::SimpleAtoi(port, &result.port) || result.port < 0 || result.port > 65535) {
    return invalid("has a port outside [0, 65535]");
  }
  return result;
}

absl::Status CheckCanListen(const HostPort& address) {
  if (address.port == 0) return absl::OkStatus();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(address.ToString(), ": cannot resolve host: ", gai_strerror(rc)));
  }
  int error = 0;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    // SO_REUSEADDR, as servers set it: TIME_WAIT leftovers do not count as "in use".
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    error = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    close(fd);
    if (error == 0) break;
  }
  freeaddrinfo(found);
  if (error == EADDRINUSE) {
    return absl::FailedPreconditionError(
        absl::StrCat(address.ToString(), ": address already in use"));
  }
  if (error != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(address.ToString(), ": cannot listen: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace prolong
