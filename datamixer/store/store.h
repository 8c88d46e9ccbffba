// A store directory: MANIFEST (what the data was tokenized with) and the RocksDB shard in
// shard/. Ingest opens it for writing with its tokenizer and is refused if the store was built
// with another one, since ids from two tokenizers must never mix.
#ifndef PROLONG_DATAMIXER_STORE_STORE_H_
#define PROLONG_DATAMIXER_STORE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "datamixer/store/shard.h"

namespace prolong::store {

struct TokenizerIdentity {
  std::string fingerprint;  // Tokenizer::fingerprint().
  uint32_t vocab_size = 0;
};

class Store {
 public:
  // Creates the store if absent, recording `tokenizer`. FAILED_PRECONDITION if it was built with
  // a different tokenizer (both fingerprints named) or another writer holds it.
  static absl::StatusOr<std::unique_ptr<Store>> OpenForWriting(const std::string& dir,
                                                               const TokenizerIdentity& tokenizer,
                                                               const ShardOptions& options = {});
  // Read-only, in any number of processes. NOT_FOUND if `dir` is not a store.
  static absl::StatusOr<std::unique_ptr<Store>> OpenForReading(const std::string& dir);

  Shard& shard() { return *shard_; }
  const Shard& shard() const { return *shard_; }
  const TokenizerIdentity& tokenizer() const { return tokenizer_; }

 private:
  Store() = default;

  TokenizerIdentity tokenizer_;
  std::unique_ptr<Shard> shard_;
};

}  // namespace prolong::store

#endif  // PROLONG_DATAMIXER_STORE_STORE_H_
