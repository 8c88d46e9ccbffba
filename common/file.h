// Whole-file reads and crash-safe writes.
#ifndef PROLONG_COMMON_FILE_H_
#define PROLONG_COMMON_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong {

// The file's bytes. NOT_FOUND "PATH: cannot open" if it cannot be opened.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes PATH.tmp, fsyncs it, renames it over PATH and fsyncs the directory: after a crash the
// file holds the old contents or the new, never a mix. FAILED_PRECONDITION naming the path.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace prolong

#endif  // PROLONG_COMMON_FILE_H_
