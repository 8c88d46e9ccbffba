// The TCP store a training gang meets at, hosted by the launcher. Without LibTorch in the
// header, so that a launcher compiles without it (it still links it: the store is c10d's).
#ifndef PROLONG_TRAINER_COMM_STORE_SERVER_H_
#define PROLONG_TRAINER_COMM_STORE_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prolong::comm {

// A TCP store served by this process (a launcher or a test) until destroyed.
class StoreServer {
 public:
  virtual ~StoreServer() = default;
  // host:port the ranks connect to.
  virtual std::string address() const = 0;
};

// Port 0 picks a free port. UNAVAILABLE if it cannot listen.
absl::StatusOr<std::unique_ptr<StoreServer>> ServeStore(const std::string& host, int port = 0);

}  // namespace prolong::comm

#endif  // PROLONG_TRAINER_COMM_STORE_SERVER_H_
