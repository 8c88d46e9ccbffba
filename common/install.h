// Where an installed prolong keeps its state and finds its own binaries. The services and
// prolongctl each need both; resolving them in one place keeps `prolongctl up`, a service
// started alone and `prolongctl eval run` on the same directories and the same binaries.
//
// Thread-safety: plain functions; they read the environment and the filesystem.
#ifndef PROLONG_COMMON_INSTALL_H_
#define PROLONG_COMMON_INSTALL_H_

#include <string>

#include "absl/status/statusor.h"

namespace prolong {

// The directory prolong's state lives under by default: $PROLONG_HOME when set and not empty,
// else $HOME/.prolong (./.prolong when HOME is unset). Not created here.
std::string ProlongHome();

// A prolong binary (trainer, scheduler, datamixer, evaluator): `path` when given (from `flag`,
// named in errors; NOT_FOUND unless it is an executable file), else beside the running binary
// (an installation), else where Bazel puts it (bazel-bin/services/NAME/NAME next to the running
// bazel-bin/services/SELF/SELF). NOT_FOUND naming the places looked at and `flag` otherwise.
absl::StatusOr<std::string> FindBinary(const std::string& name, const std::string& path,
                                       const std::string& flag);

}  // namespace prolong

#endif  // PROLONG_COMMON_INSTALL_H_
