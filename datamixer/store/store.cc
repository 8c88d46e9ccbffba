#include "datamixer/store/store.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file.h"
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

absl::Status WriteManifest(const std::string& dir, const TokenizerIdentity& identity) {
  // Atomic: a crash leaves no manifest or a whole one.
  return WriteFileAtomically(
      ManifestPath(dir),
      absl::StrCat(kManifestHeader, "\ntokenizer_fingerprint ", identity.fingerprint,
                   "\ntokenizer_vocab_size ", identity.vocab_size, "\n"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::OpenForWriting(const std::string& dir,
                                                             const TokenizerIdentity& tokenizer,
                                                             const ShardOptions& options) {
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
  ASSIGN_OR_RETURN(store->shard_, Shard::Open(dir + "/shard", Shard::Mode::kReadWrite, options));
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenForReading(const std::string& dir) {
  std::unique_ptr<Store> store(new Store());
  ASSIGN_OR_RETURN(store->tokenizer_, ReadManifest(dir));
  ASSIGN_OR_RETURN(store->shard_, Shard::Open(dir + "/shard", Shard::Mode::kReadOnly));
  return store;
}

}  // namespace prolong::store
