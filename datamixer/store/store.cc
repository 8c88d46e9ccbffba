#include "datamixer/store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace prolong::store {
namespace {

constexpr char kManifestHeader[] = "prolong-store 1";

std::string ManifestPath(const std::string& dir) { return dir + "/MANIFEST"; }

absl::StatusOr<TokenizerIdentity> ReadManifest(const std::string& dir) {
  std::ifstream in(ManifestPath(dir));
  if (!in) return absl::NotFoundError(absl::StrCat(dir, ": not a store (no MANIFEST)"));
  std::string header, key;
  TokenizerIdentity identity;
  std::getline(in, header);
  if (header != kManifestHeader) {
    return absl::FailedPreconditionError(
        absl::StrCat(ManifestPath(dir), ": unknown format '", header, "'"));
  }
  while (in >> key) {
    if (key == "tokenizer_fingerprint") in >> identity.fingerprint;
    if (key == "tokenizer_vocab_size") in >> identity.vocab_size;
  }
  if (identity.fingerprint.empty()) {
    return absl::DataLossError(absl::StrCat(ManifestPath(dir), ": no tokenizer_fingerprint"));
  }
  return identity;
}

// Temporary file, fsync, rename, fsync of the directory: a crash leaves the old manifest or the
// new one, never a torn one.
absl::Status WriteManifest(const std::string& dir, const TokenizerIdentity& identity) {
  const std::string contents =
      absl::StrCat(kManifestHeader, "\ntokenizer_fingerprint ", identity.fingerprint,
                   "\ntokenizer_vocab_size ", identity.vocab_size, "\n");
  const std::string temporary = ManifestPath(dir) + ".tmp";
  const int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat(temporary, ": ", strerror(errno)));
  const bool written =
      write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()) &&
      fsync(fd) == 0;
  close(fd);
  if (!written || rename(temporary.c_str(), ManifestPath(dir).c_str()) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(ManifestPath(dir), ": cannot write: ", strerror(errno)));
  }
  if (const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::OpenForWriting(const std::string& dir,
                                                             const TokenizerIdentity& tokenizer) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat(dir, ": cannot create: ", strerror(errno)));
  }
  std::unique_ptr<Store> store(new Store());
  absl::StatusOr<TokenizerIdentity> recorded = ReadManifest(dir);
  if (recorded.ok()) {
    if (recorded->fingerprint != tokenizer.fingerprint) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, ": built with tokenizer ", recorded->fingerprint.substr(0, 12), " (vocabulary ",
          recorded->vocab_size, "), not this one, ", tokenizer.fingerprint.substr(0, 12),
          " (vocabulary ", tokenizer.vocab_size, ")"));
    }
  } else if (absl::IsNotFound(recorded.status())) {
    RETURN_IF_ERROR(WriteManifest(dir, tokenizer));
  } else {
    return recorded.status();
  }
  store->tokenizer_ = tokenizer;
  ASSIGN_OR_RETURN(store->shard_, Shard::Open(dir + "/shard", Shard::Mode::kReadWrite));
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenForReading(const std::string& dir) {
  std::unique_ptr<Store> store(new Store());
  ASSIGN_OR_RETURN(store->tokenizer_, ReadManifest(dir));
  ASSIGN_OR_RETURN(store->shard_, Shard::Open(dir + "/shard", Shard::Mode::kReadOnly));
  return store;
}

}  // namespace prolong::store
