#ifndef PROLONG_SERVICES_PROLONGCTL_BINARIES_H_
#define PROLONG_SERVICES_PROLONGCTL_BINARIES_H_

#include <string>

#include "absl/status/statusor.h"

namespace prolong::ctl {

// A prolong binary prolongctl starts (trainer, scheduler, datamixer, evaluator): `path` when
// given (from `flag`, named in errors), else beside prolongctl (an installation), else where
// Bazel puts it (bazel-bin/services/NAME/NAME next to .../prolongctl/prolongctl).
absl::StatusOr<std::string> FindBinary(const std::string& name, const std::string& path,
                                       const std::string& flag);

}  // namespace prolong::ctl

#endif  // PROLONG_SERVICES_PROLONGCTL_BINARIES_H_
