// Listen addresses: "host:port" or "[ipv6]:port", port 0 meaning "pick a free one".
#ifndef PROLONG_COMMON_ADDRESS_H_
#define PROLONG_COMMON_ADDRESS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong {

struct HostPort {
  std::string host;  // Without brackets: "127.0.0.1", "::", "localhost".
  int port = 0;

  // "host:port", bracketing IPv6 literals.
  std::string ToString() const;
};

// INVALID_ARGUMENT naming `field` when `address` is not host:port with a port in [0, 65535].
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address, absl::string_view field);

// A listening TCP socket on `address` (SO_REUSEADDR, never SO_REUSEPORT, close-on-exec); with
// port 0 the kernel picks one and `address->port` is set to it. FAILED_PRECONDITION
// "127.0.0.1:8080: address already in use" when taken.
absl::StatusOr<int> ListenTcp(HostPort* address);

// Binds and closes a socket on `address`, so that an address in use is reported, in the words
// of ListenTcp, before a server that would log less clearly tries it. Port 0 always succeeds.
absl::Status CheckCanListen(const HostPort& address);

// A TCP socket connected to `address` (blocking, close-on-exec). UNAVAILABLE if refused.
absl::StatusOr<int> ConnectTcp(const HostPort& address);

}  // namespace prolong

#endif  // PROLONG_COMMON_ADDRESS_H_
