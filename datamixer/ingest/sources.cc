#include "datamixer/ingest/sources.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "datamixer/tokenizer/utf8.h"
#include "simdjson.h"

namespace prolong::ingest {
namespace {

// The reason a text cannot be a document, or "" if it can.
std::string TextProblem(absl::string_view text) {
  if (text.empty()) return "empty document";
  if (const size_t bad = tokenizer::FindInvalidUtf8(text); bad != text.size()) {
    return absl::StrCat("invalid UTF-8 at byte ", bad);
  }
  return "";
}

// Hands over a document or its problem; false to stop reading.
bool Offer(std::string source, std::string text, const std::function<bool(RawDocument)>& document,
           const std::function<bool(Problem)>& problem) {
  if (std::string reason = TextProblem(text); !reason.empty()) {
    return problem(Problem{std::move(source), std::move(reason)});
  }
  return document(RawDocument{std::move(source), std::move(text)});
}

absl::Status ReadText(const std::string& path, const std::function<bool(RawDocument)>& document,
                      const std::function<bool(Problem)>& problem, bool* go_on,
                      std::atomic<int64_t>* bytes_read) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  *bytes_read += static_cast<int64_t>(text.size());
  *go_on = Offer(path, std::move(text), document, problem);
  return absl::OkStatus();
}

// The messages of a chat line, or the reason it has none.
std::string ParseMessages(simdjson::ondemand::object& object,
                          std::vector<tokenizer::ChatMessage>* messages) {
  simdjson::ondemand::array array;
  if (object.find_field_unordered("messages").get_array().get(array)) {
    return "no array field 'messages'";
  }
  size_t index = 0;
  for (auto element : array) {
    simdjson::ondemand::object message;
    std::string_view role, content;
    if (element.get_object().get(message) ||
        message.find_field_unordered("role").get_string().get(role) ||
        message.find_field_unordered("content").get_string().get(content)) {
      return absl::StrCat("messages[", index, "] needs string fields 'role' and 'content'");
    }
    messages->push_back({std::string(role), std::string(content)});
    ++index;
  }
  return messages->empty() ? "empty conversation" : "";
}

absl::Status ReadJsonl(const std::string& path, const std::string& field, bool chat,
                       const std::function<bool(RawDocument)>& document,
                       const std::function<bool(Problem)>& problem, bool* go_on,
                       std::atomic<int64_t>* bytes_read) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  simdjson::ondemand::parser parser;
  std::string line;
  for (int64_t number = 1; *go_on && std::getline(in, line); ++number) {
    *bytes_read += static_cast<int64_t>(line.size()) + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // Blank line.
    const std::string source = absl::StrCat(path, ":", number);
    simdjson::padded_string json(line);
    simdjson::ondemand::document parsed;
    std::string_view text;
    simdjson::error_code error = parser.iterate(json).get(parsed);
    simdjson::ondemand::object object;
    if (!error) error = parsed.get_object().get(object);
    if (error) {
      *go_on = problem(
          Problem{source, absl::StrCat("malformed JSON (", simdjson::error_message(error), ")")});
      continue;
    }
    if (chat) {
      RawDocument document_value{source, "", {}};
      if (std::string reason = ParseMessages(object, &document_value.messages); !reason.empty()) {
        *go_on = problem(Problem{source, std::move(reason)});
      } else {
        *go_on = document(std::move(document_value));
      }
      continue;
    }
    error = object.find_field_unordered(field).get_string().get(text);
    if (error) {
      *go_on = problem(Problem{source, absl::StrCat("no string field '", field, "'")});
      continue;
    }
    *go_on = Offer(source, std::string(text), document, problem);
  }
  return absl::OkStatus();
}

constexpr int64_t kMaxRepoFileBytes = 1 << 20;

bool SkippedDirectory(const std::string& name) {
  return name[0] == '.' || name == "node_modules" || name == "vendor" || name == "third_party" ||
         name == "site-packages" || name == "__pycache__";
}

// The files of a repository that its document takes, by relative path in bytewise order
// (binaries are recognised only when read); symbolic links are not followed.
absl::StatusOr<std::vector<std::string>> RepoFiles(const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(root, error)) {
    return absl::NotFoundError(absl::StrCat(root, ": not a directory"));
  }
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, error);
  for (; !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    // A link may point out of the repository (to any file the datamixer can read) or loop.
    if (it->is_symlink(error)) continue;
    if (it->is_directory(error)) {
      if (SkippedDirectory(name)) it.disable_recursion_pending();
      continue;
    }
    if (name[0] == '.' || !it->is_regular_file(error) ||
        static_cast<int64_t>(it->file_size(error)) > kMaxRepoFileBytes) {
      continue;
    }
    files.push_back(fs::relative(it->path(), root, error).string());
  }
  if (error) return absl::NotFoundError(absl::StrCat(root, ": ", error.message()));
  std::sort(files.begin(), files.end());
  return files;
}

absl::Status ReadRepo(const std::string& root, const std::function<bool(RawDocument)>& document,
                      const std::function<bool(Problem)>& problem, bool* go_on,
                      std::atomic<int64_t>* bytes_read) {
  ASSIGN_OR_RETURN(std::vector<std::string> files, RepoFiles(root));
  std::string text;
  for (const std::string& file : files) {
    absl::StatusOr<std::string> read = ReadFile(root + "/" + file);
    if (!read.ok()) continue;  // Unreadable files are skipped like binaries.
    const std::string& body = *read;
    *bytes_read += static_cast<int64_t>(body.size());
    const bool binary = absl::string_view(body).substr(0, 8192).find('\0') != std::string::npos;
    if (binary || body.empty() || tokenizer::FindInvalidUtf8(body) != body.size()) continue;
    // File names are bytes; the document is text.
    absl::StrAppend(&text, "# File: ", tokenizer::ReplaceInvalidUtf8(file), "\n", body,
                    body.back() == '\n' ? "" : "\n");
  }
  if (text.empty()) {
    *go_on = problem(Problem{root, "no text files"});
  } else {
    *go_on = document(RawDocument{root, std::move(text), {}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Format> ParseFormat(absl::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "jsonl") return Format::kJsonl;
  if (name == "chat") return Format::kChat;
  if (name == "repo") return Format::kRepo;
  return absl::InvalidArgumentError(
      absl::StrCat("format: unknown '", name, "' (known: text, jsonl, chat, repo)"));
}

absl::StatusOr<int64_t> TotalInputBytes(const ReadOptions& options) {
  int64_t total = 0;
  for (const std::string& input : options.inputs) {
    if (options.format == Format::kRepo) {
      ASSIGN_OR_RETURN(std::vector<std::string> files, RepoFiles(input));
      for (const std::string& file : files) {
        std::error_code error;
        total += static_cast<int64_t>(std::filesystem::file_size(input + "/" + file, error));
      }
      continue;
    }
    struct stat info;
    if (stat(input.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
      return absl::NotFoundError(absl::StrCat(input, ": not a readable file"));
    }
    total += info.st_size;
  }
  return total;
}

absl::Status ReadDocuments(const ReadOptions& options,
                           const std::function<bool(RawDocument)>& document,
                           const std::function<bool(Problem)>& problem,
                           std::atomic<int64_t>* bytes_read) {
  bool go_on = true;
  for (const std::string& input : options.inputs) {
    if (!go_on) break;
    absl::Status status;
    switch (options.format) {
      case Format::kText:
        status = ReadText(input, document, problem, &go_on, bytes_read);
        break;
      case Format::kJsonl:
      case Format::kChat:
        status = ReadJsonl(input, options.field, options.format == Format::kChat, document, problem,
                           &go_on, bytes_read);
        break;
      case Format::kRepo:
        status = ReadRepo(input, document, problem, &go_on, bytes_read);
        break;
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace prolong::ingest
