// Our cl100k_base ids against OpenAI's tiktoken (npm's WebAssembly build) on the same bytes:
// prose, code, CJK, emoji, mixed scripts, long whitespace and digit runs, Unicode spaces,
// contractions and ill-formed UTF-8. Every id must match.

#include <dirent.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/load.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::tokenizer {
namespace {

constexpr char kReference[] = "tools/npm/tiktoken_reference.js";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> FixedCases() {
  return {
      "Hello, world! This is a test.",
      "It's, they're, we've, I'm, you'll, he'd. IT'S THEY'RE WE'VE I'M YOU'LL HE'D",
      "don't   stop\n\n\n  believing\t\tever",
      "   leading and trailing   ",
      "line one\r\nline two\r\n\r\nline four\n",
      "1234567890 12 123 1234 12345 3.14159 -42 1e10 0x1F",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C\xE3\x80\x82",  // 你好，世界。
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83"
      "\x88",
      "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4 \xED\x85\x8D\xEC\x8A\xA4\xED\x8A\xB8",    // Korean.
      "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82, \xD0\xBC\xD0\xB8\xD1\x80!",  // Russian.
      "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 "
      "\xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84\xD9\x85",
      "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",  // नमस्ते
      "\xF0\x9F\x98\x80\xF0\x9F\x98\x81 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D"
      "\xF0\x9F\x91\xA7 \xF0\x9F\x87\xBA\xF0\x9F\x87\xB8 \xE2\x9D\xA4\xEF\xB8\x8F",  // Emoji, ZWJ.
      "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9 e\xCC\x81",  // Precomposed and combining.
      "non\xC2\xA0"
      "breaking\xE3\x80\x80"
      "ideographic\xE2\x80\x83"
      "em\xE2\x80\xA8"
      "sep",
      "int main(int argc, char** argv) {\n  return argc > 1 ? 0 : -1;\n}\n",
      "def f(x):\n    if x:\n        return [i**2 for i in range(x)]\n    return None\n",
      "<|endoftext|> special strings are plain text here <|fim_prefix|>",
      "!!!???...,,,;;;:::---___===+++***&&&%%%$$$###@@@",
      "https://example.com/path?query=1&other=two#frag user@example.org",
      "MixedCASE camelCase snake_case kebab-case SCREAMING_CASE",
      "\t\t\ttabs\n\n\n\n\nnewlines     spaces",
      "a\xFF"
      "b\xC3"
      "c\xE2\x82"
      "d\xF0\x9F\x98"
      "e\x80\x80"
      "f\xED\xA0\x80"
      "g",  // Ill-formed.
      "\xC0\xAF\xE0\x80\xAF\xF4\x90\x80\x80 after",
      "",
      " ",
      "\n",
      std::string(10000, ' ') + "x",
      std::string(5000, '\n') + "y" + std::string(5000, '\t'),
      std::string(20000, '7'),
      std::string(3000, 'a') + std::string(3000, '!'),
  };
}

// Text with segments from many scripts, whitespace kinds, digits and punctuation, and now and
// then ill-formed bytes.
std::string RandomText(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"the",
                                                  "The",
                                                  " and",
                                                  "ing",
                                                  "tion",
                                                  "'s",
                                                  "'T",
                                                  "n't",
                                                  "\xC3\xA9",
                                                  "\xC3\x9F",
                                                  "\xCE\xB1\xCE\xB2",
                                                  "\xD0\xB4\xD0\xB0",
                                                  "\xE4\xB8\xAD",
                                                  "\xE6\x96\x87",
                                                  "\xE3\x81\x82",
                                                  "\xE3\x82\xAB",
                                                  "\xEA\xB0\x80",
                                                  "\xD8\xB9",
                                                  "\xE0\xA4\x95\xE0\xA5\x8D",
                                                  "\xF0\x9F\x98\x80",
                                                  "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
                                                  "\xE2\x80\x8D",
                                                  "0",
                                                  "42",
                                                  "1234",
                                                  "3.5",
                                                  " ",
                                                  "  ",
                                                  "    ",
                                                  "\t",
                                                  "\n",
                                                  "\n\n",
                                                  "\r\n",
                                                  "\xC2\xA0",
                                                  "\xE3\x80\x80",
                                                  "\xE2\x80\xA9",
                                                  ".",
                                                  ",",
                                                  "!",
                                                  "?",
                                                  "(",
                                                  ")",
                                                  "{",
                                                  "}",
                                                  "[",
                                                  "]",
                                                  ";",
                                                  "::",
                                                  "->",
                                                  "==",
                                                  "\"",
                                                  "'",
                                                  "`",
                                                  "#",
                                                  "//",
                                                  "/*",
                                                  "*/",
                                                  "_",
                                                  "-",
                                                  "~",
                                                  "$",
                                                  "%",
                                                  "^",
                                                  "&",
                                                  "|",
                                                  "\\",
                                                  "<",
                                                  ">",
                                                  "@"};
  static const std::vector<std::string> ill_formed = {"\xFF",     "\x80",         "\xC3",
                                                      "\xE2\x82", "\xF0\x9F\x98", "\xED\xB0\x80"};
  std::uniform_int_distribution<size_t> pick(0, pieces.size() - 1), bad(0, ill_formed.size() - 1);
  std::uniform_int_distribution<int> length(1, 400), percent(0, 99);
  const bool with_ill_formed = percent(rng) < 15;
  std::string text;
  for (int i = length(rng); i > 0; --i) {
    text += pieces[pick(rng)];
    if (with_ill_formed && percent(rng) < 3) text += ill_formed[bad(rng)];
  }
  return text;
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* entry = readdir(d)) {
      if (entry->d_name[0] != '.') files.push_back(dir + "/" + entry->d_name);
    }
    closedir(d);
  }
  return files;
}

std::vector<uint32_t> ParseIds(absl::string_view json) {
  json = absl::StripAsciiWhitespace(json);
  absl::ConsumePrefix(&json, "[");
  absl::ConsumeSuffix(&json, "]");
  std::vector<uint32_t> ids;
  for (absl::string_view field : absl::StrSplit(json, ',', absl::SkipEmpty())) {
    uint32_t id = 0;
    EXPECT_TRUE(absl::SimpleAtoi(field, &id)) << field;
    ids.push_back(id);
  }
  return ids;
}

std::string FirstDifference(const std::vector<uint32_t>& ours,
                            const std::vector<uint32_t>& reference) {
  size_t i = 0;
  while (i < ours.size() && i < reference.size() && ours[i] == reference[i]) ++i;
  return absl::StrCat("first difference at id ", i, " of ", reference.size(), ": ours ",
                      i < ours.size() ? std::to_string(ours[i]) : "(end)", ", reference ",
                      i < reference.size() ? std::to_string(reference[i]) : "(end)");
}

TEST(TiktokenParityTest, EveryIdMatchesTheReferenceOnAVariedCorpus) {
  const std::string dir = prolong::testing::MakeTempDir();
  absl::StatusOr<prolong::testing::RunResult> ranks = prolong::testing::Run(
      {"/usr/bin/env", "node", kReference, "ranks", "cl100k_base"}, absl::Seconds(60));
  ASSERT_OK(ranks);
  ASSERT_EQ(ranks->exit_code, 0) << ranks->stderr_text
                                 << "\n(is npm's tiktoken installed? run tools/setup.sh)";
  const std::string rank_path = dir + "/cl100k_base.tiktoken";
  std::ofstream(rank_path, std::ios::binary) << ranks->stdout_text;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(rank_path, "cl100k_base");
  ASSERT_OK(tokenizer);

  std::vector<std::string> corpus = FixedCases();
  std::mt19937 rng(2410);
  for (int i = 0; i < 400; ++i) corpus.push_back(RandomText(rng));
  // Real prose and code: license texts and this tokenizer's own sources.
  for (const std::string& dir_name :
       {std::string("/usr/share/common-licenses"), std::string("datamixer/tokenizer")}) {
    for (const std::string& file : FilesUnder(dir_name)) corpus.push_back(ReadFile(file));
  }

  std::vector<std::string> command = {"/usr/bin/env", "node", kReference, "encode", "cl100k_base"};
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string path = absl::StrCat(dir, "/case-", i);
    std::ofstream(path, std::ios::binary) << corpus[i];
    command.push_back(path);
  }
  absl::StatusOr<prolong::testing::RunResult> reference =
      prolong::testing::Run(command, absl::Seconds(120));
  ASSERT_OK(reference);
  ASSERT_EQ(reference->exit_code, 0) << reference->stderr_text;
  const std::vector<std::string> lines =
      absl::StrSplit(reference->stdout_text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), corpus.size());

  size_t tokens = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::vector<uint32_t> expected = ParseIds(lines[i]);
    const std::vector<uint32_t> ours = (*tokenizer)->Encode(corpus[i]);
    tokens += expected.size();
    EXPECT_EQ(ours, expected) << "case " << i << " (" << corpus[i].size() << " bytes: '"
                              << corpus[i].substr(0, 60)
                              << "'): " << FirstDifference(ours, expected);
  }
  EXPECT_GT(tokens, 100000u) << "the corpus should be large";
}

}  // namespace
}  // namespace prolong::tokenizer
