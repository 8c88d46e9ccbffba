#include "common/install.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace prolong {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string ProlongHome() {
  const char* home = std::getenv("PROLONG_HOME");
  if (home != nullptr && *home != '\0') return home;
  const char* user_home = std::getenv("HOME");
  return absl::StrCat(user_home == nullptr ? "." : user_home, "/.prolong");
}

absl::StatusOr<std::string> FindBinary(const std::string& name, const std::string& path,
                                       const std::string& flag) {
  if (!path.empty()) {
    if (IsExecutableFile(path)) return path;
    return absl::NotFoundError(absl::StrCat(flag, ": ", path, ": not an executable"));
  }
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) {
    return absl::NotFoundError(absl::StrCat("cannot locate the running binary; pass ", flag));
  }
  std::string dir(self, length);
  dir = dir.substr(0, dir.rfind('/'));
  const std::vector<std::string> candidates = {absl::StrCat(dir, "/", name),
                                               absl::StrCat(dir, "/../", name, "/", name)};
  for (const std::string& candidate : candidates) {
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(
      absl::StrCat("no ", name, " binary at ", absl::StrJoin(candidates, " or "), "; pass ", flag));
}

}  // namespace prolong
