#include "trainer/checkpoint/checkpoint_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace prolong::checkpoint {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kManifestFormat[] = "prolong.checkpoint.manifest";
constexpr int kManifestVersion = 1;
constexpr char kStepPrefix[] = "step-";
constexpr char kTemporaryPrefix[] = ".tmp-";
constexpr char kReplacedPrefix[] = ".replaced-";
constexpr size_t kReadChunk = 4 << 20;
constexpr unsigned kMaxHashThreads = 4;

std::string Join(const std::string& dir, absl::string_view name) {
  return (fs::path(dir) / std::string(name)).string();
}

std::string Errno() { return std::strerror(errno); }

std::string RandomSuffix() {
  absl::BitGen gen;
  return absl::StrFormat("%08x", absl::Uniform<uint32_t>(gen));
}

// fsync of a file or a directory, which makes the names in it durable.
absl::Status Sync(const std::string& path, bool directory) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open: ", Errno()));
  const bool synced = fsync(fd) == 0;
  const std::string error = synced ? "" : Errno();
  close(fd);
  if (!synced) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot sync: ", error));
  return absl::OkStatus();
}

absl::Status Rename(const std::string& from, const std::string& to) {
  if (rename(from.c_str(), to.c_str()) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot rename ", from, " to ", to, ": ", Errno()));
  }
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code error;
  fs::remove_all(path, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot remove: ", error.message()));
  }
  return absl::OkStatus();
}

// The size and SHA-256 of ROOT/RELATIVE; fsyncs it too when `sync`.
absl::StatusOr<ManifestEntry> HashFile(const std::string& root, const std::string& relative,
                                       bool sync) {
  const std::string path = Join(root, relative);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": missing"));
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open: ", Errno()));
  }
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::string buffer(kReadChunk, '\0');
  Sha256 hasher;
  ManifestEntry entry;
  entry.path = relative;
  absl::Status status;
  while (true) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = absl::FailedPreconditionError(absl::StrCat(path, ": cannot read: ", Errno()));
      break;
    }
    if (n == 0) break;
    hasher.Update(buffer.data(), n);
    entry.size += n;
  }
  if (status.ok() && sync && fsync(fd) != 0) {
    status = absl::FailedPreconditionError(absl::StrCat(path, ": cannot sync: ", Errno()));
  }
  close(fd);
  RETURN_IF_ERROR(status);
  entry.sha256 = absl::BytesToHexString(hasher.Finish());
  return entry;
}

// HashFile for each file, a few at a time: checkpoints are many large shards.
absl::StatusOr<std::vector<ManifestEntry>> HashFiles(const std::string& root,
                                                     const std::vector<std::string>& relative,
                                                     bool sync) {
  std::vector<absl::StatusOr<ManifestEntry>> results(relative.size(),
                                                     absl::UnknownError("not hashed"));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < relative.size();) results[i] = HashFile(root, relative[i], sync);
  };
  const size_t threads = std::min<size_t>(
      relative.size(), std::clamp(std::thread::hardware_concurrency(), 1u, kMaxHashThreads));
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) pool.emplace_back(work);
  work();
  for (std::thread& thread : pool) thread.join();

  std::vector<ManifestEntry> entries;
  for (absl::StatusOr<ManifestEntry>& result : results) {
    if (!result.ok()) return result.status();
    entries.push_back(*std::move(result));
  }
  return entries;
}

// A manifest path must stay inside the checkpoint: relative, no empty, "." or ".." parts.
bool IsSafeRelativePath(absl::string_view path) {
  if (path.empty() || path.front() == '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

bool IsHexSha256(absl::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

// ".replaced-step-00001234-RANDOM" -> 1234.
std::optional<int64_t> ParseReplacedName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kReplacedPrefix)) return std::nullopt;
  const size_t dash = name.rfind('-');
  if (dash == absl::string_view::npos) return std::nullopt;
  return ParseStepDirName(name.substr(0, dash));
}

absl::StatusOr<std::vector<std::string>> EntryNames(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  fs::directory_iterator it(dir, error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(dir, ": cannot list: ", error.message()));
  }
  return names;
}

}  // namespace

bool ManifestEntry::operator==(const ManifestEntry& other) const {
  return path == other.path && size == other.size && sha256 == other.sha256;
}

std::string StepDirName(int64_t step) { return absl::StrFormat("%s%08d", kStepPrefix, step); }

std::optional<int64_t> ParseStepDirName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kStepPrefix) || name.empty() || name.size() > 18 ||
      !std::all_of(name.begin(), name.end(), absl::ascii_isdigit)) {
    return std::nullopt;
  }
  int64_t step = 0;
  if (!absl::SimpleAtoi(name, &step)) return std::nullopt;
  return step;
}

std::string ManifestToJson(const Manifest& manifest) {
  Json files = Json::array();
  for (const ManifestEntry& entry : manifest.files) {
    files.push_back({{"path", entry.path}, {"size", entry.size}, {"sha256", entry.sha256}});
  }
  Json json = {{"format", kManifestFormat},
               {"version", kManifestVersion},
               {"step", manifest.step},
               {"files", files}};
  return json.dump(2) + "\n";
}

absl::StatusOr<Manifest> ParseManifest(absl::string_view text, absl::string_view source) {
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", parts...));
  };
  const Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return error("not valid JSON");
  if (!json.is_object()) return error("not a JSON object");
  if (!json.contains("format") || json["format"] != kManifestFormat) {
    return error("format is not \"", kManifestFormat, "\"");
  }
  if (!json.contains("version") || !json["version"].is_number_integer()) {
    return error("version must be an integer");
  }
  if (json["version"].get<int64_t>() != kManifestVersion) {
    return error("unsupported version ", json["version"].get<int64_t>(), " (this reader knows ",
                 kManifestVersion, ")");
  }
  Manifest manifest;
  if (!json.contains("step") || !json["step"].is_number_integer() ||
      json["step"].get<int64_t>() < 0) {
    return error("step must be a non-negative integer");
  }
  manifest.step = json["step"].get<int64_t>();
  if (!json.contains("files") || !json["files"].is_array()) return error("files must be a list");
  std::set<std::string> seen;
  for (const Json& file : json["files"]) {
    if (!file.is_object() || !file.contains("path") || !file["path"].is_string()) {
      return error("each entry of files needs a string path");
    }
    ManifestEntry entry;
    entry.path = file["path"].get<std::string>();
    if (!IsSafeRelativePath(entry.path)) {
      return error("path \"", entry.path, "\" is not a relative path inside the checkpoint");
    }
    if (!seen.insert(entry.path).second) return error("path ", entry.path, " is listed twice");
    if (!file.contains("size") || !file["size"].is_number_integer() ||
        file["size"].get<int64_t>() < 0) {
      return error(entry.path, ": size must be a non-negative integer");
    }
    entry.size = file["size"].get<int64_t>();
    if (!file.contains("sha256") || !file["sha256"].is_string() ||
        !IsHexSha256(file["sha256"].get<std::string>())) {
      return error(entry.path, ": sha256 must be 64 lowercase hex digits");
    }
    entry.sha256 = file["sha256"].get<std::string>();
    manifest.files.push_back(std::move(entry));
  }
  std::sort(manifest.files.begin(), manifest.files.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  return manifest;
}

absl::StatusOr<std::vector<ManifestEntry>> DescribeFiles(
    const std::string& root, const std::vector<std::string>& relative_paths) {
  return HashFiles(root, relative_paths, /*sync=*/false);
}

absl::Status VerifyCheckpoint(const std::string& checkpoint_dir, Verification verification) {
  const std::string manifest_path = Join(checkpoint_dir, kManifestFile);
  absl::StatusOr<std::string> text = ReadFile(manifest_path);
  if (!text.ok()) {
    std::error_code error;
    if (!fs::is_directory(checkpoint_dir, error)) {
      return absl::NotFoundError(absl::StrCat(checkpoint_dir, ": no such directory"));
    }
    return absl::NotFoundError(
        absl::StrCat(checkpoint_dir, ": missing file ", kManifestFile, " (an incomplete save?)"));
  }
  absl::StatusOr<Manifest> manifest = ParseManifest(*text, kManifestFile);
  if (!manifest.ok()) return Annotate(manifest.status(), checkpoint_dir);
  const std::optional<int64_t> named_step =
      ParseStepDirName(fs::path(checkpoint_dir).lexically_normal().filename().string());
  if (named_step.has_value() && *named_step != manifest->step) {
    return absl::InvalidArgumentError(
        absl::StrCat(checkpoint_dir, ": ", kManifestFile, " is for step ", manifest->step));
  }
  for (const std::string& required :
       {absl::StrCat(kModelDir, "/config.json"), std::string(kOptimizerFile),
        std::string(kTrainerStateFile)}) {
    if (std::none_of(manifest->files.begin(), manifest->files.end(),
                     [&](const ManifestEntry& entry) { return entry.path == required; })) {
      return absl::InvalidArgumentError(
          absl::StrCat(checkpoint_dir, ": ", kManifestFile, " does not list ", required));
    }
  }

  std::vector<std::string> paths;
  for (const ManifestEntry& entry : manifest->files) {
    struct stat info;
    if (stat(Join(checkpoint_dir, entry.path).c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
      return absl::NotFoundError(absl::StrCat(checkpoint_dir, ": missing file ", entry.path));
    }
    if (info.st_size != entry.size) {
      return absl::DataLossError(absl::StrCat(checkpoint_dir, ": ", entry.path, " has ",
                                              info.st_size, " bytes, the manifest says ",
                                              entry.size, " (truncated or overwritten)"));
    }
    paths.push_back(entry.path);
  }
  if (verification == Verification::kSizesOnly) return absl::OkStatus();

  absl::StatusOr<std::vector<ManifestEntry>> actual =
      HashFiles(checkpoint_dir, paths, /*sync=*/false);
  if (!actual.ok()) return Annotate(actual.status(), checkpoint_dir);
  for (size_t i = 0; i < paths.size(); ++i) {
    const ManifestEntry& expected = manifest->files[i];
    const ManifestEntry& found = (*actual)[i];
    if (found.size != expected.size) {
      return absl::DataLossError(
          absl::StrCat(checkpoint_dir, ": ", expected.path, " changed size while being verified"));
    }
    if (found.sha256 != expected.sha256) {
      return absl::DataLossError(absl::StrCat(checkpoint_dir, ": ", expected.path,
                                              ": checksum mismatch (SHA-256 ", found.sha256,
                                              ", the manifest says ", expected.sha256, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CheckpointRef>> ListCheckpoints(const std::string& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) return std::vector<CheckpointRef>();
  ASSIGN_OR_RETURN(const std::vector<std::string> names, EntryNames(dir));
  std::vector<CheckpointRef> checkpoints;
  for (const std::string& name : names) {
    const std::optional<int64_t> step = ParseStepDirName(name);
    if (!step.has_value() || !fs::is_directory(Join(dir, name), error)) continue;
    checkpoints.push_back({*step, Join(dir, name)});
  }
  std::sort(checkpoints.begin(), checkpoints.end(),
            [](const CheckpointRef& a, const CheckpointRef& b) { return a.step < b.step; });
  return checkpoints;
}

absl::StatusOr<CheckpointRef> FindLatestValid(const std::string& dir, const FindOptions& options) {
  if (options.remove_leftovers) RETURN_IF_ERROR(RecoverDirectory(dir));
  ASSIGN_OR_RETURN(const std::vector<CheckpointRef> checkpoints, ListCheckpoints(dir));
  for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
    const absl::Status status = VerifyCheckpoint(it->path, options.verification);
    if (status.ok()) return *it;
    // The message starts with the checkpoint's path.
    PROLONG_LOG(WARNING) << "skipping checkpoint " << status.message();
  }
  return absl::NotFoundError(absl::StrCat("no valid checkpoint in ", dir, " (", checkpoints.size(),
                                          " step-* directories checked)"));
}

absl::Status RecoverDirectory(const std::string& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::vector<std::string> names, EntryNames(dir));
  bool changed = false;
  for (const std::string& name : names) {
    const std::string path = Join(dir, name);
    if (absl::StartsWith(name, kTemporaryPrefix)) {
      PROLONG_LOG(WARNING) << "removing " << path << ", left over from an interrupted save";
      RETURN_IF_ERROR(RemoveAll(path));
      changed = true;
    } else if (const std::optional<int64_t> step = ParseReplacedName(name); step.has_value()) {
      const std::string original = Join(dir, StepDirName(*step));
      if (fs::exists(original, error)) {
        PROLONG_LOG(WARNING) << "removing " << path << ", replaced by " << original;
        RETURN_IF_ERROR(RemoveAll(path));
      } else {
        PROLONG_LOG(WARNING) << "restoring " << original << " from " << path
                             << ": a save replacing it was interrupted";
        RETURN_IF_ERROR(Rename(path, original));
      }
      changed = true;
    }
  }
  if (changed) RETURN_IF_ERROR(Sync(dir, /*directory=*/true));
  return absl::OkStatus();
}

absl::Status ApplyRetention(const std::string& dir, int64_t newest_step, int keep_last) {
  if (keep_last <= 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<CheckpointRef> checkpoints, ListCheckpoints(dir));
  std::vector<CheckpointRef> older;
  for (const CheckpointRef& checkpoint : checkpoints) {
    if (checkpoint.step <= newest_step) older.push_back(checkpoint);
  }
  if (older.size() <= static_cast<size_t>(keep_last)) return absl::OkStatus();
  older.resize(older.size() - keep_last);  // ascending: the ones beyond the newest keep_last
  for (const CheckpointRef& checkpoint : older) {
    PROLONG_LOG(INFO) << "removing checkpoint " << checkpoint.path << " (keeping the last "
                      << keep_last << ")";
    const std::string doomed =
        Join(dir, absl::StrCat(kTemporaryPrefix, "delete-", StepDirName(checkpoint.step), "-",
                               RandomSuffix()));
    RETURN_IF_ERROR(Rename(checkpoint.path, doomed));
    RETURN_IF_ERROR(Sync(dir, /*directory=*/true));
    RETURN_IF_ERROR(RemoveAll(doomed));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CheckpointWriter>> CheckpointWriter::Begin(const std::string& dir,
                                                                          int64_t step) {
  if (step < 0) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint step ", step, " is negative"));
  }
  std::error_code error;
  if (fs::create_directories(dir, error)) {
    // A new directory's own name must be durable before checkpoints in it can be.
    const fs::path parent = fs::absolute(dir, error).lexically_normal().parent_path();
    if (!error) RETURN_IF_ERROR(Sync(parent.string(), /*directory=*/true));
  }
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat(dir, ": cannot create: ", error.message()));
  }
  RETURN_IF_ERROR(RecoverDirectory(dir));
  for (int attempt = 0;; ++attempt) {
    const std::string staging =
        Join(dir, absl::StrCat(kTemporaryPrefix, StepDirName(step), "-", RandomSuffix()));
    if (mkdir(staging.c_str(), 0755) == 0) {
      return std::unique_ptr<CheckpointWriter>(new CheckpointWriter(dir, step, staging));
    }
    if (errno != EEXIST || attempt == 10) {
      return absl::FailedPreconditionError(absl::StrCat(staging, ": cannot create: ", Errno()));
    }
  }
}

CheckpointWriter::~CheckpointWriter() {
  if (committed_) return;
  std::error_code error;
  fs::remove_all(staging_dir_, error);
}

absl::StatusOr<std::string> CheckpointWriter::Commit(const CommitOptions& options) {
  if (committed_) {
    return absl::FailedPreconditionError(absl::StrCat(staging_dir_, ": already committed"));
  }
  // Every file and directory below the staging directory; directories deepest first.
  std::vector<std::string> files;
  std::vector<std::string> dirs;
  std::error_code error;
  fs::recursive_directory_iterator it(staging_dir_, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const std::string relative = it->path().lexically_relative(staging_dir_).generic_string();
    if (it->is_directory(error)) {
      dirs.push_back(relative);
    } else if (it->is_regular_file(error)) {
      if (relative != kManifestFile) files.push_back(relative);
    } else {
      return absl::FailedPreconditionError(
          absl::StrCat(it->path().string(), ": not a regular file or directory"));
    }
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat(staging_dir_, ": cannot list: ", error.message()));
  }
  std::sort(files.begin(), files.end());
  std::sort(dirs.rbegin(), dirs.rend());  // a child sorts after its parent

  Manifest manifest;
  manifest.step = step_;
  ASSIGN_OR_RETURN(manifest.files, HashFiles(staging_dir_, files, /*sync=*/true));
  RETURN_IF_ERROR(WriteFileAtomically(Join(staging_dir_, kManifestFile), ManifestToJson(manifest)));
  for (const std::string& relative : dirs) {
    RETURN_IF_ERROR(Sync(Join(staging_dir_, relative), /*directory=*/true));
  }
  RETURN_IF_ERROR(Sync(staging_dir_, /*directory=*/true));

  const std::string final_dir = Join(dir_, StepDirName(step_));
  std::string replaced;
  if (fs::exists(final_dir, error)) {
    replaced = Join(dir_, absl::StrCat(kReplacedPrefix, StepDirName(step_), "-", RandomSuffix()));
    RETURN_IF_ERROR(Rename(final_dir, replaced));
    RETURN_IF_ERROR(Sync(dir_, /*directory=*/true));
  }
  if (absl::Status renamed = Rename(staging_dir_, final_dir); !renamed.ok()) {
    if (!replaced.empty()) {
      const absl::Status restored = Rename(replaced, final_dir);
      if (!restored.ok()) PROLONG_LOG(ERROR) << restored.message();
    }
    return renamed;
  }
  committed_ = true;
  RETURN_IF_ERROR(Sync(dir_, /*directory=*/true));
  if (!replaced.empty()) {
    if (absl::Status removed = RemoveAll(replaced); !removed.ok()) {
      PROLONG_LOG(WARNING) << removed.message();
    }
  }
  if (absl::Status retained = ApplyRetention(dir_, step_, options.keep_last); !retained.ok()) {
    PROLONG_LOG(WARNING) << "checkpoint " << final_dir
                         << " saved, but retention failed: " << retained.message();
  }
  return final_dir;
}

}  // namespace prolong::checkpoint
