// An input of `prolongctl data ingest`: the first byte's low two bits pick the format (text,
// jsonl, chat, repo), its next bit the jsonl text field ("text" or "content"), its high four
// bits after how many documents and problems the reader is told to stop (0: never); the rest
// is the input file, or for repo the repository, written as the repo format's documents read:
// a line "# File: PATH" starts each file (text before the first goes to README.md). Whatever
// the bytes, reading succeeds (the files are readable), nothing is handed over after the caller
// said stop, every document and problem names its source (the file, FILE:LINE, or the
// repository), every problem says why, every document's text is non-empty valid UTF-8 (chat:
// its messages are, and there is at least one), and a repository's text starts with a file.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "datamixer/ingest/sources.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"
#include "fuzz/utf8.h"

namespace {

using prolong::ingest::Format;

constexpr absl::string_view kFileHeader = "# File: ";
constexpr size_t kMaxFiles = 64;
constexpr size_t kMaxDepth = 6;
constexpr size_t kMaxComponent = 100;  // Bytes; file systems allow 255.

// PATH made safe to create under the repository: no empty, "." or ".." components, none too
// long, not too deep. Empty when nothing is left.
std::string SafeRelativePath(absl::string_view path) {
  std::vector<std::string> kept;
  for (absl::string_view component : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (component == "." || component == "..") continue;
    kept.emplace_back(component.substr(0, kMaxComponent));
    if (kept.size() == kMaxDepth) break;
  }
  return absl::StrJoin(kept, "/");
}

// Writes the files `text` describes under `root`. Entries that clash with one written before (a
// file where a directory must go, or the reverse) are left out, as a real tree cannot hold both.
void WriteRepository(absl::string_view text, const std::string& root) {
  std::string path = "README.md";
  std::string contents;
  bool named = false;  // Whether `path` came from a header (README.md only takes text).
  size_t files = 0;
  auto flush = [&] {
    if (!named && contents.empty()) return;
    const std::string relative = SafeRelativePath(path);
    if (relative.empty() || absl::StrContains(relative, '\0') || files++ >= kMaxFiles) return;
    const std::filesystem::path file = std::filesystem::path(root) / relative;
    std::error_code error;
    std::filesystem::create_directories(file.parent_path(), error);
    if (error || std::filesystem::is_directory(file, error)) return;
    std::ofstream(file, std::ios::binary | std::ios::app) << contents;
  };
  for (absl::string_view line : absl::StrSplit(text, absl::ByChar('\n'))) {
    if (absl::ConsumePrefix(&line, kFileHeader)) {
      flush();
      path = std::string(line);
      named = true;
      contents.clear();
      continue;
    }
    absl::StrAppend(&contents, line, "\n");
  }
  flush();
}

// "PATH" for a whole file or repository, "PATH:LINE" for a line of a jsonl or chat file.
bool NamesSource(const std::string& source, const std::string& input, Format format) {
  if (format == Format::kText || format == Format::kRepo) return source == input;
  absl::string_view line = source;
  return absl::ConsumePrefix(&line, input + ":") && !line.empty() &&
         std::all_of(line.begin(), line.end(), absl::ascii_isdigit);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  static constexpr Format kFormats[] = {Format::kText, Format::kJsonl, Format::kChat,
                                        Format::kRepo};
  prolong::ingest::ReadOptions options;
  options.format = kFormats[data[0] & 3];
  options.field = (data[0] & 4) != 0 ? "content" : "text";
  const int stop_after = data[0] >> 4;
  std::string input;
  if (options.format == Format::kRepo) {
    input = prolong::fuzz::EmptyScratchDir("repo");
    WriteRepository(text, input);
  } else {
    input = prolong::fuzz::WriteScratchFile("input", text);
  }
  options.inputs = {input};

  int told = 0;
  bool stopped = false;
  auto tell = [&] {
    FUZZ_CHECK(!stopped, "told of a document or problem after the caller said stop");
    stopped = ++told == stop_after;
    return !stopped;
  };
  std::atomic<int64_t> bytes_read{0};
  const absl::Status status = prolong::ingest::ReadDocuments(
      options,
      [&](prolong::ingest::RawDocument document) {
        FUZZ_CHECK(NamesSource(document.source, input, options.format), document.source);
        if (options.format == Format::kChat) {
          FUZZ_CHECK(!document.messages.empty(), document.source);
          for (const auto& message : document.messages) {
            FUZZ_CHECK(prolong::fuzz::IsValidUtf8(message.role) &&
                           prolong::fuzz::IsValidUtf8(message.content),
                       document.source);
          }
        } else {
          FUZZ_CHECK(!document.text.empty(), document.source);
          FUZZ_CHECK(prolong::fuzz::IsValidUtf8(document.text), document.source);
        }
        if (options.format == Format::kRepo) {
          FUZZ_CHECK(absl::StartsWith(document.text, kFileHeader), document.text);
        }
        return tell();
      },
      [&](prolong::ingest::Problem problem) {
        FUZZ_CHECK(NamesSource(problem.source, input, options.format), problem.source);
        FUZZ_CHECK(!problem.reason.empty(), problem.source);
        return tell();
      },
      &bytes_read);
  FUZZ_CHECK(status.ok(), status.ToString());
  FUZZ_CHECK(bytes_read >= 0, "negative progress");
  return 0;
}
