#include "trainer/checkpoint/model_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/status_macros.h"

namespace prolong::checkpoint {
namespace {

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

// Whether a model directory's file belongs to the model: its config and its weights.
bool IsModelFile(const std::string& name) {
  return name == "config.json" || absl::EndsWith(name, ".safetensors") ||
         absl::EndsWith(name, ".safetensors.index.json");
}

std::string Fingerprint(std::vector<ManifestEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  Sha256 hasher;
  for (const ManifestEntry& entry : entries) {
    hasher.Update(absl::StrCat(entry.path, "\n", entry.size, "\n", entry.sha256, "\n"));
  }
  return absl::BytesToHexString(hasher.Finish());
}

}  // namespace

absl::StatusOr<ModelSource> ResolveModelSource(const std::string& path, Verification verification) {
  if (!IsDirectory(path)) return absl::NotFoundError(absl::StrCat(path, ": not a directory"));
  ModelSource source;
  if (Exists(path + "/config.json")) {
    source.model_dir = path;
    return source;
  }
  std::string checkpoint = path;
  if (Exists(absl::StrCat(path, "/", kManifestFile))) {
    RETURN_IF_ERROR(VerifyCheckpoint(path, verification));
  } else {
    ASSIGN_OR_RETURN(const std::vector<CheckpointRef> listed, ListCheckpoints(path));
    if (listed.empty()) {
      return absl::NotFoundError(absl::StrCat(
          path, ": neither a Hugging Face model directory (config.json), a training checkpoint (",
          kManifestFile, ") nor a checkpoint directory (step-N)"));
    }
    FindOptions find;
    find.verification = verification;
    ASSIGN_OR_RETURN(const CheckpointRef newest, FindLatestValid(path, find));
    checkpoint = newest.path;  // FindLatestValid checked it.
  }
  source.training_checkpoint = checkpoint;
  source.model_dir = absl::StrCat(checkpoint, "/", kModelDir);
  return source;
}

absl::StatusOr<std::string> ModelFingerprint(const ModelSource& source) {
  std::vector<ManifestEntry> model_files;
  if (!source.training_checkpoint.empty()) {
    // The manifest already holds every file's checksum.
    const std::string manifest_path = absl::StrCat(source.training_checkpoint, "/", kManifestFile);
    ASSIGN_OR_RETURN(const std::string text, ReadFile(manifest_path));
    ASSIGN_OR_RETURN(const Manifest manifest, ParseManifest(text, manifest_path));
    const std::string prefix = absl::StrCat(kModelDir, "/");
    for (ManifestEntry entry : manifest.files) {
      if (!absl::StartsWith(entry.path, prefix)) continue;
      entry.path = entry.path.substr(prefix.size());
      if (IsModelFile(entry.path)) model_files.push_back(entry);
    }
  } else {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& item : std::filesystem::directory_iterator(source.model_dir, error)) {
      const std::string name = item.path().filename().string();
      if (item.is_regular_file() && IsModelFile(name)) names.push_back(name);
    }
    if (error) {
      return absl::NotFoundError(absl::StrCat(source.model_dir, ": ", error.message()));
    }
    ASSIGN_OR_RETURN(model_files, DescribeFiles(source.model_dir, names));
  }
  if (model_files.empty()) {
    return absl::NotFoundError(absl::StrCat(source.model_dir, ": no model files"));
  }
  return Fingerprint(std::move(model_files));
}

}  // namespace prolong::checkpoint
