// A .safetensors file as a download, another writer or a crash may leave it: any bytes either
// parse into tensors that tile the data exactly (each view inside the bytes, sized by its dtype
// and shape, names() in data order and Find() agreeing) and that serialize back into a file
// parsing to the same tensors and metadata, or fail with INVALID_ARGUMENT naming the file.
// Open() on the same bytes in a file (mapped rather than copied) says the same as FromBytes.
#include <fcntl.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"
#include "trainer/model/safetensors.h"

namespace {

namespace st = prolong::safetensors;

constexpr char kName[] = "input.safetensors";

bool SameTensor(const st::TensorView& a, const st::TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.data == b.data;
}

// Everything the header promises of a parsed file, checked against the bytes it came from.
void CheckParsed(const st::SafetensorsFile& file, absl::string_view bytes) {
  uint64_t header_length;
  std::memcpy(&header_length, bytes.data(), 8);
  FUZZ_CHECK(header_length <= bytes.size() - 8, "parsed past the end");
  const absl::string_view data = bytes.substr(8 + header_length);
  FUZZ_CHECK(file.data_bytes() == static_cast<int64_t>(data.size()),
             absl::StrCat(file.data_bytes(), " data bytes of ", data.size()));

  // Walking names() in order must cover the data from its first byte to its last, each view
  // starting where the previous one ended: data order, no gap, no overlap, all inside.
  std::set<std::string> seen;
  const char* start = nullptr;
  int64_t covered = 0;
  for (const std::string& name : file.names()) {
    FUZZ_CHECK(seen.insert(name).second, absl::StrCat("\"", name, "\" listed twice"));
    FUZZ_CHECK(name != "__metadata__", "the metadata key listed as a tensor");
    const st::TensorView* view = file.Find(name);
    FUZZ_CHECK(view != nullptr, absl::StrCat("\"", name, "\" listed but not found"));
    const int64_t elements = st::NumElements(view->shape);
    FUZZ_CHECK(elements >= 0, name);
    const int64_t size = static_cast<int64_t>(view->data.size());
    FUZZ_CHECK(
        size / st::DTypeSize(view->dtype) == elements && size % st::DTypeSize(view->dtype) == 0,
        absl::StrCat("\"", name, "\": ", size, " bytes for ", elements, " elements"));
    if (start == nullptr) start = view->data.data();
    FUZZ_CHECK(view->data.data() == start + covered,
               absl::StrCat("\"", name, "\" does not start where the previous tensor ends"));
    FUZZ_CHECK(covered + size <= file.data_bytes(), absl::StrCat("\"", name, "\" runs past"));
    FUZZ_CHECK(view->data == data.substr(covered, size),
               absl::StrCat("\"", name, "\" is not the file's bytes"));
    covered += size;
  }
  FUZZ_CHECK(covered == file.data_bytes(), absl::StrCat(covered, " of ", file.data_bytes()));
  FUZZ_CHECK(file.Find("__metadata__") == nullptr, "the metadata key found as a tensor");
}

// Serialize writes what FromBytes reads: same names, dtypes, shapes, data and metadata, and a
// second round changes nothing (the layout is canonical).
void CheckRoundTrip(const st::SafetensorsFile& file) {
  std::vector<st::NamedTensor> tensors;
  for (const std::string& name : file.names()) tensors.push_back({name, *file.Find(name)});
  const auto written = st::Serialize(tensors, file.metadata());
  FUZZ_CHECK(written.ok(), written.status().ToString());
  const auto reread = st::SafetensorsFile::FromBytes(*written, "written");
  FUZZ_CHECK(reread.ok(), reread.status().ToString());
  FUZZ_CHECK((*reread)->metadata() == file.metadata(), "metadata changed");
  FUZZ_CHECK((*reread)->names().size() == file.names().size(), "tensor count changed");
  for (const std::string& name : file.names()) {
    const st::TensorView* view = (*reread)->Find(name);
    FUZZ_CHECK(view != nullptr && SameTensor(*view, *file.Find(name)),
               absl::StrCat("\"", name, "\" changed"));
  }
  std::vector<st::NamedTensor> again;
  for (const std::string& name : (*reread)->names())
    again.push_back({name, *(*reread)->Find(name)});
  const auto rewritten = st::Serialize(again, (*reread)->metadata());
  FUZZ_CHECK(rewritten.ok() && *rewritten == *written, "a second round changed the bytes");
}

// The status message without its leading "PATH: ", which differs between Open and FromBytes.
absl::string_view Problem(const absl::Status& status, absl::string_view path) {
  absl::string_view message = status.message();
  FUZZ_CHECK(absl::ConsumePrefix(&message, absl::StrCat(path, ": ")), status.ToString());
  return message;
}

void CheckOpenAgrees(const absl::StatusOr<std::unique_ptr<st::SafetensorsFile>>& from_bytes,
                     absl::string_view bytes) {
  const std::string path = prolong::fuzz::WriteScratchFile(kName, bytes);
  const auto opened = st::SafetensorsFile::Open(path);
  FUZZ_CHECK(opened.ok() == from_bytes.ok(),
             absl::StrCat("Open: ", opened.status().ToString(),
                          "; FromBytes: ", from_bytes.status().ToString()));
  if (!opened.ok()) {
    FUZZ_CHECK(opened.status().code() == from_bytes.status().code() &&
                   Problem(opened.status(), path) == Problem(from_bytes.status(), kName),
               absl::StrCat("Open: ", opened.status().ToString(),
                            "; FromBytes: ", from_bytes.status().ToString()));
    return;
  }
  FUZZ_CHECK((*opened)->names() == (*from_bytes)->names(), "Open lists other tensors");
  FUZZ_CHECK((*opened)->metadata() == (*from_bytes)->metadata(), "Open reads other metadata");
  for (const std::string& name : (*opened)->names()) {
    FUZZ_CHECK(SameTensor(*(*opened)->Find(name), *(*from_bytes)->Find(name)),
               absl::StrCat("Open reads another \"", name, "\""));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto file = st::SafetensorsFile::FromBytes(std::string(bytes), kName);
  if (!file.ok()) {
    FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument,
               file.status().ToString());
    Problem(file.status(), kName);  // checks that the message names the file
  } else {
    CheckParsed(**file, bytes);
    CheckRoundTrip(**file);
  }
  CheckOpenAgrees(file, bytes);
  return 0;
}
