#include "trainer/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this code copies it as is");

namespace prolong::safetensors {
namespace {

using Json = nlohmann::json;

// The reference reader refuses larger headers.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  DType dtype;
  const char* name;
  int64_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kBool, "BOOL", 1}, {DType::kU8, "U8", 1},   {DType::kI8, "I8", 1},
    {DType::kI16, "I16", 2},   {DType::kU16, "U16", 2}, {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2}, {DType::kI32, "I32", 4}, {DType::kU32, "U32", 4},
    {DType::kF32, "F32", 4},   {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8},
    {DType::kU64, "U64", 8},
};

const DTypeInfo& Info(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  std::abort();  // every enumerator is in the table
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// A JSON string literal, escaped as serde_json (the reference writer) escapes it.
absl::StatusOr<std::string> Quote(const std::string& text) {
  try {
    return Json(text).dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", absl::CHexEscape(text), "\" is not valid UTF-8"));
  }
}

// What a writer needs: the header (length prefix, JSON, padding) and the tensors in file order.
struct Prepared {
  std::string header;
  std::vector<const NamedTensor*> order;
  int64_t data_bytes = 0;
};

absl::Status CheckTensor(const NamedTensor& t) {
  if (t.name.empty()) return absl::InvalidArgumentError("a tensor has an empty name");
  if (t.name == "__metadata__") {
    return absl::InvalidArgumentError("\"__metadata__\" is reserved and cannot name a tensor");
  }
  const int64_t elements = NumElements(t.tensor.shape);
  if (elements < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", t.name, "\": invalid shape ", ShapeString(t.tensor.shape)));
  }
  const int64_t size = DTypeSize(t.tensor.dtype);
  // Checked first, so that the message below never multiplies past int64.
  if (elements > std::numeric_limits<int64_t>::max() / size) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", t.name, "\": shape ", ShapeString(t.tensor.shape), " overflows"));
  }
  if (static_cast<int64_t>(t.tensor.data.size()) != elements * size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor \"", t.name, "\": ", t.tensor.data.size(), " bytes of data, but ",
        DTypeName(t.tensor.dtype), " ", ShapeString(t.tensor.shape), " needs ", elements * size));
  }
  return absl::OkStatus();
}

absl::StatusOr<Prepared> Prepare(const std::vector<NamedTensor>& tensors,
                                 const Metadata& metadata) {
  Prepared prepared;
  std::set<absl::string_view> names;
  for (const NamedTensor& t : tensors) {
    RETURN_IF_ERROR(CheckTensor(t));
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", t.name, "\" appears twice"));
    }
    prepared.order.push_back(&t);
  }
  std::stable_sort(prepared.order.begin(), prepared.order.end(),
                   [](const NamedTensor* a, const NamedTensor* b) {
                     if (a->tensor.dtype != b->tensor.dtype) {
                       return a->tensor.dtype > b->tensor.dtype;
                     }
                     return a->name < b->name;
                   });

  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      ASSIGN_OR_RETURN(const std::string quoted_key, Quote(key));
      ASSIGN_OR_RETURN(const std::string quoted_value, Quote(value));
      absl::StrAppend(&json, first ? "" : ",", quoted_key, ":", quoted_value);
      first = false;
    }
    json += "}";
  }
  int64_t offset = 0;
  for (const NamedTensor* t : prepared.order) {
    ASSIGN_OR_RETURN(const std::string quoted_name, Quote(t->name));
    const int64_t end = offset + static_cast<int64_t>(t->tensor.data.size());
    absl::StrAppend(&json, json.size() > 1 ? "," : "", quoted_name, ":{\"dtype\":\"",
                    DTypeName(t->tensor.dtype), "\",\"shape\":[",
                    absl::StrJoin(t->tensor.shape, ","), "],\"data_offsets\":[", offset, ",", end,
                    "]}");
    offset = end;
  }
  json += "}";
  json.append((8 - json.size() % 8) % 8, ' ');

  uint64_t length = json.size();
  prepared.header.resize(8);
  std::memcpy(prepared.header.data(), &length, 8);
  prepared.header += json;
  prepared.data_bytes = offset;
  return prepared;
}

absl::StatusOr<int64_t> NonNegativeInteger(const Json& value) {
  if (!value.is_number_unsigned()) return absl::InvalidArgumentError("");
  const uint64_t v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError("");
  }
  return static_cast<int64_t>(v);
}

bool IsShardFileName(const std::string& name) {
  // model-00001-of-00004.safetensors
  constexpr absl::string_view kPrefix = "model-", kSuffix = ".safetensors";
  if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) return false;
  const std::string middle =
      name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  const std::vector<std::string> parts = absl::StrSplit(middle, "-of-");
  if (parts.size() != 2) return false;
  for (const std::string& part : parts) {
    if (part.size() < 5 || !std::all_of(part.begin(), part.end(), absl::ascii_isdigit)) {
      return false;
    }
  }
  return true;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / name).string();
}

}  // namespace

absl::string_view DTypeName(DType dtype) { return Info(dtype).name; }

absl::StatusOr<DType> DTypeFromName(absl::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (name == info.name) return info.dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype \"", name, "\""));
}

int64_t DTypeSize(DType dtype) { return Info(dtype).size; }

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

absl::StatusOr<std::string> Serialize(const std::vector<NamedTensor>& tensors,
                                      const Metadata& metadata) {
  ASSIGN_OR_RETURN(const Prepared prepared, Prepare(tensors, metadata));
  std::string bytes;
  bytes.reserve(prepared.header.size() + prepared.data_bytes);
  bytes += prepared.header;
  for (const NamedTensor* t : prepared.order)
    bytes.append(t->tensor.data.data(), t->tensor.data.size());
  return bytes;
}

absl::Status WriteFile(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const Metadata& metadata) {
  ASSIGN_OR_RETURN(const Prepared prepared, Prepare(tensors, metadata));
  ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file, AtomicFile::Create(path));
  RETURN_IF_ERROR(file->Append(prepared.header));
  for (const NamedTensor* t : prepared.order) RETURN_IF_ERROR(file->Append(t->tensor.data));
  return file->Commit();
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  // O_NONBLOCK: a FIFO named by mistake is refused below instead of blocking open().
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, ": ", std::strerror(error)));
  }
  // A directory or a device opens but does not map (or maps something else): not a file.
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  absl::string_view bytes;
  if (st.st_size > 0) {
    void* mapping = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping == MAP_FAILED) {
      const int error = errno;
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": cannot map: ", std::strerror(error)));
    }
    file->mapping_ = mapping;
    file->mapping_size_ = st.st_size;
    bytes = absl::string_view(static_cast<const char*>(mapping), st.st_size);
  }
  close(fd);
  RETURN_IF_ERROR(file->Parse(bytes));
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(
    std::string bytes, const std::string& name) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = name;
  file->owned_bytes_ = std::move(bytes);
  RETURN_IF_ERROR(file->Parse(file->owned_bytes_));
  return file;
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::Status SafetensorsFile::Parse(absl::string_view bytes) {
  auto error = [this](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", parts...));
  };
  if (bytes.size() < 8) {
    return error("file is ", bytes.size(), " bytes, too short for the 8-byte header length");
  }
  uint64_t header_length;
  std::memcpy(&header_length, bytes.data(), 8);
  if (header_length > kMaxHeaderBytes) {
    return error("header length ", header_length, " exceeds the limit of ", kMaxHeaderBytes,
                 " bytes");
  }
  if (header_length > bytes.size() - 8) {
    return error("header length ", header_length, " runs past the end of the file (", bytes.size(),
                 " bytes; truncated?)");
  }
  const absl::string_view header = bytes.substr(8, header_length);
  const absl::string_view data = bytes.substr(8 + header_length);
  if (header.empty() || header[0] != '{') return error("header does not start with '{'");
  Json json;
  try {
    json = Json::parse(header.begin(), header.end());
  } catch (const Json::exception& e) {
    return error("header is not valid JSON: ", e.what());
  }
  if (!json.is_object()) return error("header is not a JSON object");

  struct Entry {
    std::string name;
    int64_t begin;
    int64_t end;
  };
  std::vector<Entry> entries;
  for (const auto& item : json.items()) {
    // Named variables, not a structured binding: a lambda below captures the name, which
    // C++17 allows of variables only (clang refuses a binding).
    const std::string& name = item.key();
    const Json& value = item.value();
    if (name == "__metadata__") {
      if (!value.is_object()) return error("__metadata__ is not an object");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) return error("__metadata__ \"", key, "\" is not a string");
        metadata_[key] = text.get<std::string>();
      }
      continue;
    }
    // As Serialize refuses it: a file read must be one that can be written back.
    if (name.empty()) return error("a tensor has an empty name");
    auto tensor_error = [&](auto&&... parts) { return error("tensor \"", name, "\": ", parts...); };
    if (!value.is_object()) return tensor_error("entry is not an object");
    TensorView view;
    const auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string()) return tensor_error("no dtype string");
    absl::StatusOr<DType> parsed_dtype = DTypeFromName(dtype->get<std::string>());
    if (!parsed_dtype.ok()) return tensor_error(parsed_dtype.status().message());
    view.dtype = *parsed_dtype;
    const auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) return tensor_error("no shape array");
    for (const Json& dim : *shape) {
      absl::StatusOr<int64_t> d = NonNegativeInteger(dim);
      if (!d.ok()) return tensor_error("shape ", shape->dump(), " is not of non-negative integers");
      view.shape.push_back(*d);
    }
    const auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !NonNegativeInteger((*offsets)[0]).ok() || !NonNegativeInteger((*offsets)[1]).ok()) {
      return tensor_error("data_offsets must be two non-negative integers");
    }
    const int64_t begin = *NonNegativeInteger((*offsets)[0]);
    const int64_t end = *NonNegativeInteger((*offsets)[1]);
    const std::string range = absl::StrCat("data_offsets [", begin, ", ", end, "]");
    if (end < begin) return tensor_error(range, " end before they begin");
    if (end > static_cast<int64_t>(data.size())) {
      return tensor_error(range, " run past the end of the data (", data.size(),
                          " bytes; truncated?)");
    }
    const int64_t elements = NumElements(view.shape);
    const int64_t element_size = DTypeSize(view.dtype);
    if (elements < 0 || elements > std::numeric_limits<int64_t>::max() / element_size) {
      return tensor_error("shape ", ShapeString(view.shape), " overflows");
    }
    if (end - begin != elements * element_size) {
      return tensor_error(range, " hold ", end - begin, " bytes, but ", DTypeName(view.dtype), " ",
                          ShapeString(view.shape), " needs ", elements * element_size);
    }
    view.data = data.substr(begin, end - begin);
    tensors_.emplace(name, std::move(view));
    entries.push_back({name, begin, end});
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  int64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < covered) {
      return error("tensor \"", e.name, "\" (data_offsets [", e.begin, ", ", e.end,
                   "]) overlaps tensor \"", previous->name, "\" (data_offsets [", previous->begin,
                   ", ", previous->end, "])");
    }
    if (e.begin > covered) {
      return error("data bytes [", covered, ", ", e.begin, ") before tensor \"", e.name,
                   "\" belong to no tensor");
    }
    covered = e.end;
    previous = &e;
    names_.push_back(e.name);
  }
  if (covered != static_cast<int64_t>(data.size())) {
    return error(static_cast<int64_t>(data.size()) - covered,
                 " data bytes after the last tensor belong to no tensor");
  }
  data_bytes_ = covered;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  auto checkpoint = std::unique_ptr<Checkpoint>(new Checkpoint());
  checkpoint->path_ = path;
  std::error_code ec;
  std::string file_path = path;
  if (std::filesystem::is_directory(path, ec)) {
    file_path = JoinPath(path, kIndexFileName);
    if (!std::filesystem::exists(file_path, ec)) file_path = JoinPath(path, kSingleFileName);
    if (!std::filesystem::exists(file_path, ec)) {
      return absl::NotFoundError(
          absl::StrCat(path, ": holds neither ", kIndexFileName, " nor ", kSingleFileName));
    }
  }

  if (!absl::EndsWith(file_path, ".json")) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(file_path));
    for (const std::string& name : file->names()) checkpoint->file_of_[name] = file.get();
    checkpoint->files_.push_back(std::move(file));
    return checkpoint;
  }

  ASSIGN_OR_RETURN(const std::string text, ReadFile(file_path));
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(file_path, ": ", parts...));
  };
  Json index;
  try {
    index = Json::parse(text);
  } catch (const Json::exception& e) {
    return error("not valid JSON: ", e.what());
  }
  if (!index.is_object()) return error("not a JSON object");
  const auto weight_map = index.find("weight_map");
  if (weight_map == index.end() || !weight_map->is_object()) {
    return error("no \"weight_map\" object");
  }
  std::map<std::string, std::vector<std::string>> names_by_file;
  for (const auto& [name, file] : weight_map->items()) {
    if (!file.is_string()) return error("weight_map \"", name, "\" is not a file name");
    const std::string file_name = file.get<std::string>();
    const std::filesystem::path relative(file_name);
    bool escapes = file_name.empty() || relative.is_absolute();
    for (const auto& part : relative) escapes = escapes || part == "..";
    if (escapes) {
      return error("weight_map \"", name, "\": file \"", file_name,
                   "\" is not inside the checkpoint directory");
    }
    // open() would stop at the NUL and read another file than the one named.
    if (file_name.find('\0') != std::string::npos) {
      return error("weight_map \"", name, "\": file \"", absl::CHexEscape(file_name),
                   "\" holds a NUL byte");
    }
    names_by_file[file_name].push_back(name);
  }
  const std::string dir = std::filesystem::path(file_path).parent_path().string();
  for (const auto& [file_name, names] : names_by_file) {
    ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                     SafetensorsFile::Open(JoinPath(dir, file_name)));
    for (const std::string& name : names) {
      if (file->Find(name) == nullptr) {
        return error("weight_map places tensor \"", name, "\" in ", file_name,
                     ", which does not hold it");
      }
      checkpoint->file_of_[name] = file.get();
    }
    for (const std::string& name : file->names()) {
      const auto it = checkpoint->file_of_.find(name);
      if (it == checkpoint->file_of_.end() || it->second != file.get()) {
        return error(file_name, " holds tensor \"", name,
                     "\", which the weight_map does not place there");
      }
    }
    checkpoint->files_.push_back(std::move(file));
  }
  return checkpoint;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  names.reserve(file_of_.size());
  for (const auto& [name, file] : file_of_) names.push_back(name);
  return names;
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  const auto it = file_of_.find(name);
  return it == file_of_.end() ? nullptr : it->second->Find(name);
}

std::string Checkpoint::FileOf(const std::string& name) const {
  const auto it = file_of_.find(name);
  return it == file_of_.end() ? "" : it->second->path();
}

int64_t Checkpoint::total_bytes() const {
  int64_t total = 0;
  for (const auto& file : files_) total += file->data_bytes();
  return total;
}

absl::StatusOr<std::vector<std::string>> WriteCheckpoint(const std::string& dir,
                                                         const std::vector<NamedTensor>& tensors,
                                                         int64_t max_shard_bytes,
                                                         const Metadata& metadata) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(dir, ": not a directory"));
  }
  if (max_shard_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_shard_bytes must be positive, got ", max_shard_bytes));
  }
  // Validates every tensor and the uniqueness of names across shards.
  ASSIGN_OR_RETURN(const Prepared all, Prepare(tensors, metadata));

  std::vector<std::vector<NamedTensor>> shards;
  int64_t shard_bytes = 0;
  for (const NamedTensor& t : tensors) {
    const int64_t bytes = t.tensor.data.size();
    if (shards.empty() || (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(t);
    shard_bytes += bytes;
  }

  std::vector<std::string> written;
  if (shards.size() <= 1) {
    RETURN_IF_ERROR(WriteFile(JoinPath(dir, kSingleFileName), tensors, metadata));
    written.push_back(kSingleFileName);
  } else {
    Json weight_map = Json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string name =
          absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, static_cast<int>(shards.size()));
      RETURN_IF_ERROR(WriteFile(JoinPath(dir, name), shards[i], metadata));
      for (const NamedTensor& t : shards[i]) weight_map[t.name] = name;
      written.push_back(name);
    }
    Json index = {{"metadata", {{"total_size", all.data_bytes}}}, {"weight_map", weight_map}};
    RETURN_IF_ERROR(WriteFileAtomically(JoinPath(dir, kIndexFileName), index.dump(2) + "\n"));
    written.push_back(kIndexFileName);
  }

  // Only now that the new checkpoint is complete: files of an earlier one that would shadow or
  // clutter it.
  // The stale index goes first, so that no index ever names a removed shard.
  const std::set<std::string> keep(written.begin(), written.end());
  std::vector<std::string> stale;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (keep.count(name) != 0) continue;
    if (name == kIndexFileName) {
      stale.insert(stale.begin(), name);
    } else if (name == kSingleFileName || IsShardFileName(name)) {
      stale.push_back(name);
    }
  }
  for (const std::string& name : stale) std::filesystem::remove(JoinPath(dir, name), ec);
  return written;
}

}  // namespace prolong::safetensors
