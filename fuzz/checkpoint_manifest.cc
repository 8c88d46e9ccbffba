// MANIFEST.json of a checkpoint directory: any bytes either parse into a manifest whose paths
// stay inside the directory and which writes back and parses to itself, or fail naming the file.
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "fuzz/check.h"
#include "trainer/checkpoint/checkpoint_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const auto manifest = prolong::checkpoint::ParseManifest(text, "MANIFEST.json");
  if (!manifest.ok()) {
    FUZZ_CHECK(absl::StartsWith(manifest.status().message(), "MANIFEST.json: "),
               manifest.status().ToString());
    return 0;
  }
  for (const auto& file : manifest->files) {
    FUZZ_CHECK(!file.path.empty() && file.path[0] != '/', file.path);
    FUZZ_CHECK(file.path != ".." && !absl::StartsWith(file.path, "../") &&
                   !absl::StrContains(file.path, "/../") && !absl::EndsWith(file.path, "/.."),
               file.path);
  }
  const std::string written = prolong::checkpoint::ManifestToJson(*manifest);
  const auto reread = prolong::checkpoint::ParseManifest(written, "written");
  FUZZ_CHECK(reread.ok(), reread.status().ToString());
  FUZZ_CHECK(reread->step == manifest->step && reread->files == manifest->files, written);
  return 0;
}
