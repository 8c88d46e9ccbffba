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

// Binds a throwaway socket to `address` (port > 0) without SO_REUSEPORT, so that an address in
// use is reported before a server starts: FAILED_PRECONDITION "127.0.0.1:8080: address already
// in use". Port 0 always succeeds.
absl::Status CheckCanListen(const HostPort& address);

}  // namespace prolong

#endif  // PROLONG_COMMON_ADDRESS_H_
