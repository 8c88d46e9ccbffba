#include "common/address.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

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

namespace {

using AddrInfoList = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

absl::StatusOr<AddrInfoList> Resolve(const HostPort& address, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(address.ToString(), ": cannot resolve host: ", gai_strerror(rc)));
  }
  return AddrInfoList(found, &freeaddrinfo);
}

int BoundPort(int fd) {
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) return 0;
  if (bound.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
}

}  // namespace

absl::StatusOr<int> ListenTcp(HostPort* address) {
  ASSIGN_OR_RETURN(AddrInfoList found, Resolve(*address, /*passive=*/true));
  int error = 0;
  for (addrinfo* ai = found.get(); ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    // TIME_WAIT leftovers of an earlier run do not count as "in use".
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
      address->port = BoundPort(fd);
      return fd;
    }
    error = errno;
    close(fd);
  }
  if (error == EADDRINUSE) {
    return absl::FailedPreconditionError(
        absl::StrCat(address->ToString(), ": address already in use"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat(address->ToString(), ": cannot listen: ", std::strerror(error)));
}

absl::Status CheckCanListen(const HostPort& address) {
  if (address.port == 0) return absl::OkStatus();
  HostPort probe = address;
  ASSIGN_OR_RETURN(int fd, ListenTcp(&probe));
  close(fd);
  return absl::OkStatus();
}

absl::StatusOr<int> ConnectTcp(const HostPort& address) {
  absl::StatusOr<AddrInfoList> found = Resolve(address, /*passive=*/false);
  if (!found.ok()) return absl::UnavailableError(found.status().message());
  int error = 0;
  for (addrinfo* ai = found->get(); ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    error = errno;
    close(fd);
  }
  return absl::UnavailableError(
      absl::StrCat(address.ToString(), ": cannot connect: ", std::strerror(error)));
}

}  // namespace prolong
