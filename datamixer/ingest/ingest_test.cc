#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "datamixer/ingest/ingester.h"
#include "datamixer/store/stats.h"
#include "datamixer/tokenizer/bpe_tokenizer.h"
#include "datamixer/tokenizer/presets.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::ingest {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::StartsWith;

std::unique_ptr<tokenizer::Tokenizer> ByteTokenizer() {
  tokenizer::BpeSpec spec;
  spec.ranks = tokenizer::ByteRankFile({"th", "the"});
  spec.pattern = tokenizer::kCl100kPattern;
  auto created = tokenizer::BpeTokenizer::Create(spec);
  EXPECT_OK(created);
  return *std::move(created);
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = prolong::testing::MakeTempDir();
    auto shard = store::Shard::Open(dir_ + "/shard", store::Shard::Mode::kReadWrite);
    ASSERT_OK(shard);
    shard_ = *std::move(shard);
    tokenizer_ = ByteTokenizer();
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << contents;
    return path;
  }

  absl::StatusOr<IngestSummary> Run(IngestOptions options) {
    return Ingest(options, *tokenizer_, *shard_, nullptr);
  }

  std::string dir_;
  std::unique_ptr<store::Shard> shard_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
};

TEST_F(IngestTest, JsonlSkipsAndReportsBadLines) {
  const std::string path = Write("web.jsonl",
                                 "{\"text\": \"the first document\"}\n"
                                 "{\"text\": \"the second\", \"id\": 2}\n"
                                 "not json at all\n"
                                 "{\"body\": \"no text field\"}\n"
                                 "\n"
                                 "{\"text\": \"\"}\n"
                                 "{\"text\": 42}\n"
                                 "{\"id\": 3, \"text\": \"escaped \\u00e9 \\n third\"}\n");
  IngestOptions options;
  options.domain = "web";
  options.read = {Format::kJsonl, "text", {path}};
  absl::StatusOr<IngestSummary> summary = Run(options);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->documents_added, 3);
  EXPECT_EQ(summary->documents_invalid, 4);
  ASSERT_EQ(summary->problems.size(), 4u);
  EXPECT_EQ(summary->problems[0].source, path + ":3");
  EXPECT_EQ(summary->problems[0].reason.substr(0, 14), "malformed JSON");
  EXPECT_EQ(summary->problems[1].source, path + ":4");
  EXPECT_EQ(summary->problems[1].reason, "no string field 'text'");
  EXPECT_EQ(summary->problems[2].reason, "empty document");
  EXPECT_EQ(summary->problems[3].source, path + ":7");

  // The escaped text is stored unescaped.
  std::vector<std::string> texts;
  ASSERT_OK(shard_->ScanIndex("web", [&](const store::IndexEntry& entry) {
    texts.push_back(*tokenizer_->Decode(*shard_->ReadTokens("web", entry.id)));
  }));
  EXPECT_NE(std::find(texts.begin(), texts.end(), "escaped \xC3\xA9 \n third"), texts.end());
}

TEST_F(IngestTest, TextFilesAreOneDocumentEachAndInvalidUtf8IsSkipped) {
  IngestOptions options;
  options.domain = "books";
  options.read = {Format::kText,
                  "text",
                  {Write("a.txt", "the book a"), Write("b.txt", "bad \xFF byte"),
                   Write("c.txt", "the book c")}};
  absl::StatusOr<IngestSummary> summary = Run(options);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->documents_added, 2);
  ASSERT_EQ(summary->problems.size(), 1u);
  EXPECT_EQ(summary->problems[0].source, dir_ + "/b.txt");
  EXPECT_EQ(summary->problems[0].reason, "invalid UTF-8 at byte 4");
}

TEST_F(IngestTest, ReingestingAddsNothingAndMinTokensDrops) {
  IngestOptions options;
  options.domain = "books";
  options.read = {Format::kText,
                  "text",
                  {Write("short.txt", "tiny"), Write("long.txt", std::string(500, 'x'))}};
  options.min_tokens = 100;
  absl::StatusOr<IngestSummary> first = Run(options);
  ASSERT_OK(first);
  EXPECT_EQ(first->documents_added, 1);
  EXPECT_EQ(first->documents_too_short, 1);
  absl::StatusOr<IngestSummary> second = Run(options);
  ASSERT_OK(second);
  EXPECT_EQ(second->documents_added, 0);
  EXPECT_EQ(second->documents_duplicate, 1);
}

TEST_F(IngestTest, StrictStopsAtTheFirstProblemAndMissingInputsFailFirst) {
  IngestOptions options;
  options.domain = "web";
  options.strict = true;
  options.read = {Format::kJsonl, "text", {Write("x.jsonl", "{\"text\": \"ok\"}\n{oops\n")}};
  absl::StatusOr<IngestSummary> summary = Run(options);
  EXPECT_THAT(summary, StatusIs(absl::StatusCode::kInvalidArgument,
                                StartsWith(dir_ + "/x.jsonl:2: malformed JSON")));

  options.strict = false;
  options.read.inputs = {Write("y.jsonl", "{\"text\": \"fine\"}\n"), dir_ + "/missing.jsonl"};
  summary = Run(options);
  EXPECT_THAT(summary,
              StatusIs(absl::StatusCode::kNotFound, dir_ + "/missing.jsonl: not a readable file"));
  // Neither run wrote anything: the strict one stopped before its first batch was complete, and
  // the missing file was found before reading began.
  int64_t documents = 0;
  ASSERT_OK(shard_->ScanIndex("web", [&](const store::IndexEntry&) { ++documents; }));
  EXPECT_EQ(documents, 0);
}

TEST_F(IngestTest, ChatConversationsKeepAnAssistantOnlyLossMask) {
  tokenizer::BpeSpec spec;
  spec.ranks = tokenizer::ByteRankFile();
  tokenizer::ApplyPreset(tokenizer::Preset::kLlama3, 256, spec);
  auto llama = tokenizer::BpeTokenizer::Create(spec);
  ASSERT_OK(llama);
  const std::string path =
      Write("chat.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, "
            "{\"role\": \"assistant\", \"content\": \"Yo\"}]}\n"
            "{\"messages\": [{\"role\": \"user\", \"content\": \"no answer\"}]}\n"
            "{\"messages\": [{\"role\": \"user\"}]}\n"
            "{\"text\": \"not a chat\"}\n");
  IngestOptions options;
  options.domain = "sft";
  options.read = {Format::kChat, "text", {path}};
  absl::StatusOr<IngestSummary> summary = Ingest(options, **llama, *shard_, nullptr);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->documents_added, 1);
  // Problems found by the reader and by the tokenizing workers arrive in any order.
  std::map<std::string, std::string> reasons;
  for (const Problem& problem : summary->problems) reasons[problem.source] = problem.reason;
  EXPECT_EQ(reasons, (std::map<std::string, std::string>{
                         {path + ":2", "messages: no assistant message, so nothing to learn"},
                         {path + ":3", "messages[0] needs string fields 'role' and 'content'"},
                         {path + ":4", "no array field 'messages'"}}));

  std::vector<store::IndexEntry> entries;
  ASSERT_OK(shard_->ScanIndex("sft", [&](const store::IndexEntry& e) { entries.push_back(e); }));
  ASSERT_EQ(entries.size(), 1u);
  const std::vector<uint32_t> tokens = *shard_->ReadTokens("sft", entries[0].id);
  const std::string mask = *shard_->ReadLossMask("sft", entries[0].id);
  ASSERT_EQ(mask.size(), tokens.size());
  std::string targets;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (mask[i]) targets += *llama.value()->Decode({tokens[i]});
  }
  EXPECT_EQ(targets, "Yo<|eot_id|>");

  // A tokenizer without chat tokens is refused before anything is read.
  EXPECT_THAT(Run(options), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(IngestTest, ARepositoryIsOneDocumentOfItsTextFilesInPathOrder) {
  const std::string repo = dir_ + "/repo";
  for (const char* sub : {"/src", "/.git", "/node_modules/lib", "/docs"}) {
    std::filesystem::create_directories(repo + sub);
  }
  Write("repo/src/main.cc", "int main() {}\n");
  Write("repo/README.md", "# readme");
  Write("repo/docs/a.txt", "a");
  Write("repo/.git/HEAD", "ref: main\n");
  Write("repo/.hidden", "secret");
  Write("repo/node_modules/lib/x.js", "vendored");
  Write("repo/logo.png", std::string("\x89PNG\0\0", 6));
  Write("repo/latin1.txt", "caf\xE9");
  Write("repo/huge.txt", std::string((1 << 20) + 1, 'h'));
  // Links are not followed: they may point out of the repository.
  Write("outside.txt", "not the repository's");
  std::filesystem::create_symlink(dir_ + "/outside.txt", repo + "/linked.txt");
  std::filesystem::create_directory_symlink(dir_ + "/empty_repo", repo + "/linked_dir");
  std::filesystem::create_directories(dir_ + "/empty_repo/.git");

  IngestOptions options;
  options.domain = "code";
  options.read = {Format::kRepo, "text", {repo, dir_ + "/empty_repo"}};
  absl::StatusOr<IngestSummary> summary = Run(options);
  ASSERT_OK(summary);
  EXPECT_EQ(summary->documents_added, 1);
  ASSERT_EQ(summary->problems.size(), 1u);
  EXPECT_EQ(summary->problems[0].source, dir_ + "/empty_repo");
  EXPECT_EQ(summary->problems[0].reason, "no text files");

  std::string text;
  ASSERT_OK(shard_->ScanIndex("code", [&](const store::IndexEntry& entry) {
    EXPECT_EQ(entry.source, repo);
    text = *tokenizer_->Decode(*shard_->ReadTokens("code", entry.id));
  }));
  EXPECT_EQ(text,
            "# File: README.md\n# readme\n"
            "# File: docs/a.txt\na\n"
            "# File: src/main.cc\nint main() {}\n");

  options.read.inputs = {dir_ + "/no_such_repo"};
  EXPECT_THAT(Run(options), StatusIs(absl::StatusCode::kNotFound));
}

// Four workers store exactly what one does, and progress reaches the input's size.
TEST_F(IngestTest, ParallelIngestEqualsSerialIngest) {
  std::string lines;
  for (int i = 0; i < 3000; ++i) {
    absl::StrAppend(&lines, "{\"text\": \"the document number ", i, " ", std::string(i % 97, 'z'),
                    "\"}\n");
  }
  const std::string path = Write("many.jsonl", lines);
  IngestOptions options;
  options.domain = "web";
  options.read = {Format::kJsonl, "text", {path}};
  options.batch_documents = 100;
  options.threads = 1;
  ASSERT_OK(Run(options));
  const std::string serial = *store::ComputeFingerprint(*shard_);

  auto parallel_shard = store::Shard::Open(dir_ + "/parallel", store::Shard::Mode::kReadWrite);
  ASSERT_OK(parallel_shard);
  options.threads = 4;
  IngestProgress last;
  absl::StatusOr<IngestSummary> summary =
      Ingest(options, *tokenizer_, **parallel_shard, [&](const IngestProgress& p) { last = p; });
  ASSERT_OK(summary);
  EXPECT_EQ(summary->documents_added, 3000);
  EXPECT_EQ(*store::ComputeFingerprint(**parallel_shard), serial);
  EXPECT_EQ(last.input_bytes_read, last.input_bytes_total);
  EXPECT_EQ(last.documents, 3000);
}

}  // namespace
}  // namespace prolong::ingest
