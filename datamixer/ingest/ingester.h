// Ingest: input files -> documents -> token ids -> a store shard, on every core.
//
// One reader thread parses the inputs, `threads` workers tokenize, and the calling thread
// writes batches. Queues between them are bounded, so memory stays at a few batches whatever
// the input size. Documents are content-addressed in the shard, so ingesting the same input
// twice adds nothing the second time.
#ifndef PROLONG_DATAMIXER_INGEST_INGESTER_H_
#define PROLONG_DATAMIXER_INGEST_INGESTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "datamixer/ingest/sources.h"
#include "datamixer/store/shard.h"
#include "datamixer/tokenizer/tokenizer.h"

namespace prolong::ingest {

struct IngestOptions {
  std::string domain;
  ReadOptions read;
  // Shorter documents are dropped and counted (ProLong's long domains keep >= 64K tokens).
  int64_t min_tokens = 0;
  // The first problem ends the ingest with INVALID_ARGUMENT; batches written stay written.
  bool strict = false;
  int threads = 2;
  // Documents per write; each write is atomic.
  int batch_documents = 256;
  // At most this many problems are listed in the summary (all are counted).
  int max_listed_problems = 20;
};

struct IngestProgress {
  int64_t input_bytes_total = 0;
  int64_t input_bytes_read = 0;
  int64_t documents = 0;  // Tokenized so far.
  int64_t tokens = 0;
  absl::Duration elapsed;
};

struct IngestSummary {
  int64_t documents_added = 0;
  int64_t documents_duplicate = 0;
  int64_t documents_too_short = 0;
  int64_t documents_invalid = 0;
  int64_t tokens_added = 0;
  // Up to max_listed_problems, in the order found (reader and workers interleave).
  std::vector<Problem> problems;
};

// NOT_FOUND for a missing input (before anything is written), INVALID_ARGUMENT for a problem
// under `strict`. `progress` is called about twice a second from the writing thread.
absl::StatusOr<IngestSummary> Ingest(const IngestOptions& options,
                                     const tokenizer::Tokenizer& tokenizer, store::Shard& shard,
                                     const std::function<void(const IngestProgress&)>& progress);

}  // namespace prolong::ingest

#endif  // PROLONG_DATAMIXER_INGEST_INGESTER_H_
