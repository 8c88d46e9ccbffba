// The safetensors format (Hugging Face's tensor file) and its sharded checkpoints, without
// LibTorch: tensors are byte views, so data, tokenizer or tooling code can read weights too.
//
// A file is: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v", ...}, "name": {"dtype": "F32", "shape": [2, 3],
//    "data_offsets": [begin, end]}, ...}
// padded with spaces so that the data starts at a multiple of 8, then the raw row-major
// little-endian tensor data. Offsets are relative to the start of the data; the tensors tile it
// exactly (no gap, no overlap, nothing after the last one).
//
// A sharded checkpoint is a directory with model-00001-of-0000N.safetensors files and
// model.safetensors.index.json = {"metadata": {"total_size": BYTES}, "weight_map": {name: file}}.
//
// Thread-safety: SafetensorsFile and Checkpoint are immutable after Open, so their const
// methods may be called concurrently. The free functions keep no state.
#ifndef PROLONG_TRAINER_MODEL_SAFETENSORS_H_
#define PROLONG_TRAINER_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace prolong::safetensors {

// In the reference implementation's order, which is also its write order (reversed): larger
// alignment first, so that every tensor's data is aligned to its element size.
enum class DType { kBool, kU8, kI8, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64 };

absl::string_view DTypeName(DType dtype);  // "F32", "BF16", ...
absl::StatusOr<DType> DTypeFromName(absl::string_view name);
int64_t DTypeSize(DType dtype);  // bytes per element

// One tensor's bytes as stored (row-major, little-endian). Does not own them.
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty for a scalar
  absl::string_view data;      // exactly NumElements(shape) * DTypeSize(dtype) bytes
};

// The product of the dimensions (1 for a scalar), or -1 on a negative dimension or overflow.
int64_t NumElements(const std::vector<int64_t>& shape);

struct NamedTensor {
  std::string name;
  TensorView tensor;
};

// The header's "__metadata__": free-form strings (Hugging Face writes {"format": "pt"}).
using Metadata = std::map<std::string, std::string>;

// The whole file in memory, laid out as the reference writer does: tensors ordered by dtype
// (larger alignment first) then name, metadata keys sorted. INVALID_ARGUMENT naming the tensor
// for an empty, duplicate or reserved ("__metadata__") name, a name that is not UTF-8, or data
// whose size does not match dtype and shape.
absl::StatusOr<std::string> Serialize(const std::vector<NamedTensor>& tensors,
                                      const Metadata& metadata = {});

// The same bytes written to `path` without a second copy in memory: written to PATH.tmp,
// fsynced, renamed over PATH, directory fsynced, so a crash leaves the old file or the new one.
absl::Status WriteFile(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const Metadata& metadata = {});

// A parsed, validated safetensors file. Views point into a read-only memory map of the file
// (or into the bytes given to FromBytes) and stay valid while this object lives.
class SafetensorsFile {
 public:
  // Maps and validates the file. NOT_FOUND if it cannot be opened; INVALID_ARGUMENT "PATH: ..."
  // naming the problem (and the tensor, if one is at fault) for a malformed file (an empty
  // tensor name included: Serialize could not write it back) or for a path that is not a
  // regular file (a directory, a FIFO).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Validates bytes already in memory; `name` stands for the path in messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes,
                                                                    const std::string& name);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return metadata_; }
  // Tensor names in data order.
  const std::vector<std::string>& names() const { return names_; }
  // nullptr if the file has no tensor of that name.
  const TensorView* Find(const std::string& name) const;
  int64_t data_bytes() const { return data_bytes_; }

 private:
  SafetensorsFile() = default;
  absl::Status Parse(absl::string_view bytes);

  std::string path_;
  std::string owned_bytes_;  // FromBytes
  void* mapping_ = nullptr;  // Open
  size_t mapping_size_ = 0;
  Metadata metadata_;
  std::vector<std::string> names_;
  std::map<std::string, TensorView> tensors_;
  int64_t data_bytes_ = 0;
};

inline constexpr char kSingleFileName[] = "model.safetensors";
inline constexpr char kIndexFileName[] = "model.safetensors.index.json";

// A checkpoint made of one safetensors file or of the shards an index names.
class Checkpoint {
 public:
  // `path` is a .safetensors file, an index JSON, or a directory holding
  // model.safetensors.index.json (preferred) or model.safetensors. For an index, every file it
  // names is opened; a tensor the weight_map places in a file that lacks it, a tensor a shard
  // holds that the weight_map does not place there, or a file outside the directory (or with a
  // NUL byte in its name, which open() would cut short) is INVALID_ARGUMENT naming the tensor and
  // the file.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // Sorted.
  std::vector<std::string> names() const;
  // nullptr if absent.
  const TensorView* Find(const std::string& name) const;
  // The file that holds `name` ("" if absent), for messages.
  std::string FileOf(const std::string& name) const;
  // Sum of the tensors' data bytes.
  int64_t total_bytes() const;

 private:
  Checkpoint() = default;

  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> file_of_;
};

// Writes `tensors` into directory `dir` (which must exist) as Hugging Face's save_pretrained
// does: one model.safetensors if their data fits in `max_shard_bytes`, otherwise shards of
// consecutive tensors (in the given order) of at most `max_shard_bytes` of data each (a tensor
// larger than that gets a shard of its own) plus model.safetensors.index.json. Each file is
// written atomically; the index is written after its shards, and files of an earlier
// checkpoint in `dir` that the new one does not use are removed last, so a crash leaves a
// loadable checkpoint. Returns the names of the files written, index last.
absl::StatusOr<std::vector<std::string>> WriteCheckpoint(const std::string& dir,
                                                         const std::vector<NamedTensor>& tensors,
                                                         int64_t max_shard_bytes,
                                                         const Metadata& metadata = {});

}  // namespace prolong::safetensors

#endif  // PROLONG_TRAINER_MODEL_SAFETENSORS_H_
