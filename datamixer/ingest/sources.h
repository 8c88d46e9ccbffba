// Reading raw documents out of input files, in the formats `prolongctl data ingest` accepts:
//   text   one document per file
//   jsonl  one document per line, its text in a string field ("text" by default)
//   chat   one conversation per line: {"messages": [{"role": ..., "content": ...}, ...]}
//   repo   one document per repository directory (ProLong's code-repository documents): its
//          files in bytewise path order, each after a line "# File: <relative path>" (the
//          path's bytes that are not UTF-8 written as U+FFFD). Skipped:
//          hidden files and directories (.git ...), vendored trees (node_modules, vendor,
//          third_party, site-packages, __pycache__), files over 1 MiB, and binaries (a NUL byte
//          in the first 8 KiB, or invalid UTF-8).
// A bad document (malformed JSON, a missing field, invalid UTF-8, an empty text) is reported with
// its file and line and skipped; reading goes on.
#ifndef PROLONG_DATAMIXER_INGEST_SOURCES_H_
#define PROLONG_DATAMIXER_INGEST_SOURCES_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "datamixer/tokenizer/chat_template.h"

namespace prolong::ingest {

enum class Format { kText, kJsonl, kChat, kRepo };

// "text", "jsonl", "chat" or "repo"; INVALID_ARGUMENT naming the known formats otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view name);

struct RawDocument {
  std::string source;                            // "path" or "path:line".
  std::string text;                              // Valid UTF-8, not empty; unused for chat.
  std::vector<tokenizer::ChatMessage> messages;  // Chat only.
};

struct Problem {
  std::string source;
  std::string reason;
};

struct ReadOptions {
  Format format = Format::kText;
  std::string field = "text";  // jsonl only.
  std::vector<std::string> inputs;
};

// Total size of the inputs (for repo: of the files a repository document would take). NOT_FOUND
// naming the first input that cannot be read, so that a typo fails before any work starts.
absl::StatusOr<int64_t> TotalInputBytes(const ReadOptions& options);

// Reads every input in order. `document` returns false to stop early (the caller is done or
// failing); `problem` is told of each skipped document. `bytes_read` advances as input is
// consumed, for progress. Fails only when a file cannot be read.
absl::Status ReadDocuments(const ReadOptions& options,
                           const std::function<bool(RawDocument)>& document,
                           const std::function<bool(Problem)>& problem,
                           std::atomic<int64_t>* bytes_read);

}  // namespace prolong::ingest

#endif  // PROLONG_DATAMIXER_INGEST_SOURCES_H_
