#include "evaluator/metrics/porter_stemmer.h"

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong::evaluator::metrics {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kReference[] = "evaluator/metrics/testdata/nltk_stem.py";
// Debian's wamerican; python3-nltk and wamerican are installed by tools/setup.sh.
constexpr char kWordList[] = "/usr/share/dict/american-english";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

TEST(PorterStemmerTest, StemsEveryDictionaryWordAsNltk) {
  ASSERT_OK_AND_ASSIGN(const std::string words_text, ReadFile(kWordList));
  const std::vector<std::string> words = Lines(words_text);
  ASSERT_GT(words.size(), 90000u) << "expected Debian's full word list at " << kWordList;

  const std::string out = prolong::testing::MakeTempDir() + "/stems.txt";
  ASSERT_OK_AND_ASSIGN(
      const prolong::testing::RunResult run,
      prolong::testing::Run({kPython, kReference, kWordList, out}, absl::Seconds(240)));
  ASSERT_EQ(run.exit_code, 0) << "NLTK reference failed (is python3-nltk installed?): "
                              << run.stderr_text;
  ASSERT_OK_AND_ASSIGN(const std::string stems_text, ReadFile(out));
  const std::vector<std::string> expected = Lines(stems_text);
  ASSERT_EQ(expected.size(), words.size());

  int mismatches = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string stem = PorterStem(words[i]);
    if (stem != expected[i] && ++mismatches <= 20) {
      ADD_FAILURE() << "'" << words[i] << "': got '" << stem << "', NLTK '" << expected[i] << "'";
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << words.size() << " words";
  std::cout << "compared " << words.size() << " words with NLTK's PorterStemmer" << std::endl;
}

// Cases of each step and of NLTK's extensions, as NLTK stems them.
TEST(PorterStemmerTest, KnownStems) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"caresses", "caress"},
      {"ponies", "poni"},
      {"ties", "tie"},
      {"dies", "die"},
      {"cats", "cat"},
      {"feed", "feed"},
      {"agreed", "agre"},
      {"plastered", "plaster"},
      {"motoring", "motor"},
      {"sing", "sing"},
      {"conflated", "conflat"},
      {"hopping", "hop"},
      {"falling", "fall"},
      {"filing", "file"},
      {"happy", "happi"},
      {"enjoy", "enjoy"},
      {"sky", "sky"},
      {"skies", "sky"},
      {"dying", "die"},
      {"news", "news"},
      {"relational", "relat"},
      {"generalization", "gener"},
      {"spied", "spi"},
      {"died", "die"},
      {"controlling", "control"},
      {"Running", "run"},
      {"is", "is"},
      {"A", "a"},
      {"", ""},
  };
  for (const auto& [word, stem] : cases) EXPECT_EQ(PorterStem(word), stem) << word;
}

}  // namespace
}  // namespace prolong::evaluator::metrics
