// Exit codes of prolong's processes, which launchers read to decide whether to try again (as
// Kubeflow's ExitCode restart policy does): 0 done; kExitRetryable for a fault another attempt
// may not meet (a peer or service that went away, a crash); kExitUserError for a problem the
// same inputs would repeat (a bad spec, bad data, a refused resume). A process killed by a
// signal (128 + n to a shell) counts as retryable.
#ifndef PROLONG_COMMON_EXIT_CODES_H_
#define PROLONG_COMMON_EXIT_CODES_H_

#include "absl/status/status.h"

namespace prolong {

inline constexpr int kExitRetryable = 1;
inline constexpr int kExitUserError = 2;

// The exit code for a process that failed with `status` (not OK).
inline int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kUnimplemented:
      return kExitUserError;
    default:
      return kExitRetryable;
  }
}

// Whether an exit code asks for another attempt.
inline bool IsRetryableExitCode(int code) { return code != 0 && code != kExitUserError; }

}  // namespace prolong

#endif  // PROLONG_COMMON_EXIT_CODES_H_
