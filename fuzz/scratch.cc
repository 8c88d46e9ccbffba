#include "fuzz/scratch.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace prolong::fuzz {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz scratch: %s\n", what.c_str());
  std::abort();
}

void RemoveScratchDir() {
  std::error_code error;
  std::filesystem::remove_all(ScratchDir(), error);
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string* const dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/prolong-fuzz-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) Fail(absl::StrCat("mkdtemp ", pattern, " failed"));
    auto* made = new std::string(std::filesystem::absolute(pattern).string());
    std::atexit(RemoveScratchDir);
    return made;
  }();
  return *dir;
}

std::string WriteScratchFile(absl::string_view name, absl::string_view contents) {
  const std::string path = absl::StrCat(ScratchDir(), "/", name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) Fail(absl::StrCat("cannot write ", path));
  return path;
}

std::string EmptyScratchDir(absl::string_view name) {
  const std::string path = absl::StrCat(ScratchDir(), "/", name);
  std::error_code error;
  std::filesystem::remove_all(path, error);
  if (error || !std::filesystem::create_directory(path, error) || error) {
    Fail(absl::StrCat("cannot make ", path, ": ", error.message()));
  }
  return path;
}

}  // namespace prolong::fuzz
