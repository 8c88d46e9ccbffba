// Whole-file reads and crash-safe writes.
#ifndef PROLONG_COMMON_FILE_H_
#define PROLONG_COMMON_FILE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong {

// The file's bytes. NOT_FOUND "PATH: cannot open" if it cannot be opened.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// A file written as PATH.tmp and, on Commit, fsynced, renamed over PATH and its directory
// fsynced: after a crash PATH holds its old contents or all the new ones, never a mix. Dropped
// uncommitted, the temporary is removed. Errors name PATH and the system's reason:
// RESOURCE_EXHAUSTED when the disk, a quota or the file-size limit is full (ENOSPC, EDQUOT,
// EFBIG), FAILED_PRECONDITION otherwise.
class AtomicFile {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFile>> Create(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  absl::Status Append(absl::string_view bytes);
  // May be called once; nothing may be appended after.
  absl::Status Commit();

 private:
  explicit AtomicFile(const std::string& path) : path_(path), temporary_(path + ".tmp") {}
  absl::Status Error(absl::string_view what) const;  // from errno

  std::string path_;
  std::string temporary_;
  int fd_ = -1;
  bool committed_ = false;
};

// `contents` as a whole AtomicFile.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace prolong

#endif  // PROLONG_COMMON_FILE_H_
