// model.safetensors.index.json of a sharded checkpoint, as a download or another writer may leave
// it, in a directory holding two valid shards (and, beside the directory, a valid file the index
// must not reach): any index either opens into exactly the tensors its weight_map names, each
// found with the shard's bytes in a file inside the directory and counted once in total_bytes,
// or fails with NOT_FOUND or INVALID_ARGUMENT naming a file inside the directory. An index that
// names a file outside the directory (absolute, or through "..") always fails.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"
#include "nlohmann/json.hpp"
#include "trainer/model/safetensors.h"

namespace {

namespace fs = std::filesystem;
namespace st = prolong::safetensors;
using Json = nlohmann::json;

std::string Bytes(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// ROOT/checkpoint/model-0000{1,2}-of-00002.safetensors and ROOT/outside.safetensors, written
// once per process (ROOT in its scratch directory, fuzz/scratch.h); each input becomes
// ROOT/checkpoint/model.safetensors.index.json.
class Fixture {
 public:
  Fixture() {
    root_ = prolong::fuzz::EmptyScratchDir("safetensors_index");
    dir_ = (root_ / "checkpoint").string();
    fs::create_directory(dir_);
    // Several dtypes, a scalar and an empty tensor; the shards' own names, as save_pretrained
    // writes them.
    Add("model-00001-of-00002.safetensors", "model.embed_tokens.weight", st::DType::kBF16, {2, 2},
        Bytes({0x80, 0x3f, 0x00, 0x40, 0x40, 0xc0, 0x80, 0x7f}));
    Add("model-00001-of-00002.safetensors", "model.norm.weight", st::DType::kF32, {2},
        Bytes({0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}));
    Add("model-00001-of-00002.safetensors", "model.scale", st::DType::kF64, {},
        Bytes({0, 0, 0, 0, 0, 0, 0xf0, 0x3f}));
    Add("model-00002-of-00002.safetensors", "lm_head.weight", st::DType::kF16, {1, 2},
        Bytes({0x00, 0x3c, 0x00, 0xc0}));
    Add("model-00002-of-00002.safetensors", "model.layers.0.mask", st::DType::kBool, {3},
        Bytes({1, 0, 1}));
    Add("model-00002-of-00002.safetensors", "model.empty", st::DType::kF32, {0, 2}, "");
    Add("../outside.safetensors", "outside", st::DType::kI64, {1}, Bytes({7, 0, 0, 0, 0, 0, 0, 0}));
    for (const auto& [file, tensors] : shards_) {
      const absl::Status written = st::WriteFile(Path(file), tensors, {{"format", "pt"}});
      FUZZ_CHECK(written.ok(), written.ToString());
    }
  }
  const std::string& dir() const { return dir_; }
  std::string Path(const std::string& file) const { return (fs::path(dir_) / file).string(); }
  // The tensor a shard in the directory holds under `name`; nullptr for any other name.
  const st::TensorView* Expected(const std::string& name) const {
    for (const auto& [file, tensors] : shards_) {
      if (absl::StartsWith(file, "../")) continue;
      for (const st::NamedTensor& t : tensors) {
        if (t.name == name) return &t.tensor;
      }
    }
    return nullptr;
  }

 private:
  void Add(const std::string& file, const std::string& name, st::DType dtype,
           std::vector<int64_t> shape, std::string bytes) {
    data_.push_back(std::make_unique<std::string>(std::move(bytes)));
    shards_[file].push_back({name, {dtype, std::move(shape), *data_.back()}});
  }

  fs::path root_;
  std::string dir_;
  std::vector<std::unique_ptr<std::string>> data_;  // what the views point into
  std::map<std::string, std::vector<st::NamedTensor>> shards_;
};

// Whether `file`, as the weight_map spells it, leads out of the directory: judged on the path
// alone, as the fixture holds no links.
bool Escapes(const std::string& file) {
  const fs::path normal = fs::path(file).lexically_normal();
  return normal.is_absolute() || normal == ".." || absl::StartsWith(normal.string(), "../");
}

bool SameTensor(const st::TensorView& a, const st::TensorView& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.data == b.data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  const std::string index_path = fixture.Path(st::kIndexFileName);
  {
    std::ofstream index(index_path, std::ios::binary | std::ios::trunc);
    index.write(reinterpret_cast<const char*>(data), size);
    FUZZ_CHECK(index.good(), index_path);
  }
  // The weight_map as the index states it, to hold the checkpoint to (the same JSON library:
  // what it cannot parse, Open must refuse anyway).
  std::map<std::string, std::string> weight_map;
  bool names_outside = false;
  const Json json = Json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("weight_map") && json["weight_map"].is_object()) {
    for (const auto& [name, file] : json["weight_map"].items()) {
      if (!file.is_string()) continue;
      weight_map[name] = file.get<std::string>();
      names_outside = names_outside || Escapes(weight_map[name]);
    }
  }

  const auto checkpoint = st::Checkpoint::Open(fixture.dir());
  if (!checkpoint.ok()) {
    const absl::Status& status = checkpoint.status();
    FUZZ_CHECK(status.code() == absl::StatusCode::kNotFound ||
                   status.code() == absl::StatusCode::kInvalidArgument,
               status.ToString());
    FUZZ_CHECK(absl::StartsWith(status.message(), fixture.dir() + "/"), status.ToString());
    // Refused before any shard is opened, so that nothing outside is ever read.
    if (names_outside) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, status.ToString());
    }
    return 0;
  }
  FUZZ_CHECK(!names_outside, "opened an index naming a file outside the directory");

  const std::vector<std::string> names = (*checkpoint)->names();
  FUZZ_CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size() &&
                 std::is_sorted(names.begin(), names.end()),
             "names() not sorted and unique");
  FUZZ_CHECK(names.size() == weight_map.size(), "names() is not the weight_map");
  const fs::path dir = fs::path(fixture.dir()).lexically_normal();
  int64_t total = 0;
  for (const std::string& name : names) {
    const auto placed = weight_map.find(name);
    FUZZ_CHECK(placed != weight_map.end(), absl::StrCat("\"", name, "\" is not in the weight_map"));
    const st::TensorView* view = (*checkpoint)->Find(name);
    const st::TensorView* expected = fixture.Expected(name);
    FUZZ_CHECK(view != nullptr && expected != nullptr && SameTensor(*view, *expected),
               absl::StrCat("\"", name, "\" is not the shard's tensor"));
    const std::string file = (*checkpoint)->FileOf(name);
    const fs::path normal = fs::path(file).lexically_normal();
    FUZZ_CHECK(file.find('\0') == std::string::npos && normal.parent_path() == dir &&
                   normal == (fs::path(fixture.dir()) / placed->second).lexically_normal() &&
                   fs::is_regular_file(normal),
               absl::StrCat("\"", name, "\" in ", file));
    total += static_cast<int64_t>(view->data.size());
  }
  FUZZ_CHECK((*checkpoint)->total_bytes() == total,
             absl::StrCat("total_bytes ", (*checkpoint)->total_bytes(), ", tensors ", total));
  FUZZ_CHECK((*checkpoint)->Find("outside") == nullptr, "found the tensor outside");
  return 0;
}
