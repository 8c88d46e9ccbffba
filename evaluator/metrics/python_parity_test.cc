// HELMET's text rules and arithmetic here against Python itself (testdata/python_reference.py
// restates them on Python's str, re, round and NumPy).
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/status_matchers.h"
#include "evaluator/metrics/answer.h"
#include "evaluator/metrics/average.h"
#include "evaluator/metrics/internal/python_text.h"
#include "evaluator/metrics/retrieval.h"
#include "evaluator/metrics/rouge.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"

namespace prolong::evaluator::metrics {
namespace {

constexpr char kPython[] = "/usr/bin/python3";
constexpr char kReference[] = "evaluator/metrics/testdata/python_reference.py";
constexpr char kRs[] = "\x1e";
constexpr char kUs[] = "\x1f";
constexpr char kGs[] = "\x1d";

std::string Utf8(char32_t c) { return internal::EncodeUtf8(std::u32string(1, c)); }

std::vector<std::string> Results(const std::vector<char32_t>& block) {
  std::string probe;
  for (char32_t code_point : block) {
    const std::string c = Utf8(code_point);
    // A sigma after and before the code point, where it may be final.
    absl::StrAppend(&probe, "A", c, "\u03a3 ", c, "\u03a3", c, "x\u03a3", c, " the", c, "a 1", c,
                    ">2 ");
  }
  std::vector<std::string> results;
  results.push_back(internal::PythonLower(probe));
  results.push_back(NormalizeAnswer(probe));
  std::vector<std::string> ranked;
  for (const auto& [id, score] : ParseRankings(probe))
    ranked.push_back(absl::StrCat(id, kGs, score));
  results.push_back(absl::StrJoin(ranked, kUs));
  results.push_back(absl::StrJoin(RougeTokenize(probe), kUs));
  for (char32_t code_point : block) {
    if (code_point > 0xFFFF) continue;
    const std::string c = Utf8(code_point);
    results.push_back(
        ParseOutput(absl::StrCat("x\nANSWER:", c, "answer:", c, "y", c, "\r\nz"), "Answer:"));
    results.push_back(ParseOutput(absl::StrCat(c, "nswer: q\nAnswer: r"), "Answer:"));
    results.push_back(ParseOutput(absl::StrCat("an", c, "wer: q\nAnswer: r"), "Answer:"));
    results.push_back(
        ParseOutput(absl::StrCat("correspond", c, "ng value: q\nx"), "corresponding value:"));
  }
  return results;
}

std::string Digest(const std::vector<std::string>& results) {
  Sha256 sha;
  sha.Update(absl::StrJoin(results, kRs));
  return absl::BytesToHexString(sha.Finish());
}

// Every Unicode code point through lowercasing (final sigma included), normalization,
// parse_rankings, ROUGE tokens and parse_output, compared by digest per block of 16 code
// points. The probes are built the same way on both sides.
TEST(PythonParityTest, EveryCodePointAsPython) {
  std::vector<std::vector<char32_t>> blocks;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c < 0xE000) continue;
    if (blocks.empty() || blocks.back().size() == 16) blocks.emplace_back();
    blocks.back().push_back(c);
  }
  const std::string dir = prolong::testing::MakeTempDir();
  ASSERT_OK(WriteFileAtomically(dir + "/blocks.json", nlohmann::json(blocks).dump()));
  ASSERT_OK_AND_ASSIGN(const prolong::testing::RunResult run,
                       prolong::testing::Run({kPython, kReference, "text", dir + "/blocks.json",
                                              dir + "/digests.txt"},
                                             absl::Seconds(240)));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  ASSERT_OK_AND_ASSIGN(const std::string text, ReadFile(dir + "/digests.txt"));
  const std::vector<std::string> digests = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(digests.size(), blocks.size());

  int mismatches = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const std::vector<std::string> results = Results(blocks[i]);
    if (Digest(results) == digests[i] || ++mismatches > 10) continue;
    ADD_FAILURE() << "code points U+" << absl::StrCat(absl::Hex(blocks[i].front())) << "..U+"
                  << absl::StrCat(absl::Hex(blocks[i].back()))
                  << " differ from Python; ours: " << absl::CEscape(absl::StrJoin(results, " | "));
  }
  EXPECT_EQ(mismatches, 0) << "blocks of " << blocks.size();
}

// NumPy's mean of float64 arrays of many lengths (its pairwise summation changes order at 8,
// 128 and every halving above) and Python's round(x, 5), against NumPy and Python.
TEST(PythonParityTest, MeanAndRoundAsNumpyAndPython) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<std::vector<double>> arrays;
  for (int n : {1, 2, 7, 8, 9, 15, 16, 17, 100, 127, 128, 129, 200, 255, 256, 257, 1000, 4099}) {
    std::vector<double> array;
    for (int i = 0; i < n; ++i) array.push_back(unit(rng) * (i % 3 == 0 ? 1e-3 : 1.0));
    arrays.push_back(std::move(array));
  }
  std::vector<double> values = {0.125, 0.375,       2.675,    0.000005, 1.0 / 3,
                                0.5,   0.299999999, 0.123455, 0.123465, 1e-7};
  for (int i = 0; i < 2000; ++i) values.push_back(unit(rng));
  for (int i = 1; i <= 1000; ++i) values.push_back(i / 200000.0);  // many near-ties at 5 digits

  const std::string dir = prolong::testing::MakeTempDir();
  const nlohmann::json inputs = {{"arrays", arrays}, {"values", values}};
  ASSERT_OK(WriteFileAtomically(dir + "/numbers.json", inputs.dump()));
  ASSERT_OK_AND_ASSIGN(const prolong::testing::RunResult run,
                       prolong::testing::Run({kPython, kReference, "numbers", dir + "/numbers.json",
                                              dir + "/numbers.txt"},
                                             absl::Seconds(120)));
  ASSERT_EQ(run.exit_code, 0) << "Python with NumPy failed: " << run.stderr_text;
  ASSERT_OK_AND_ASSIGN(const std::string text, ReadFile(dir + "/numbers.txt"));
  const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), arrays.size() + values.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    EXPECT_EQ(NumpyMean(arrays[i]), std::strtod(lines[i].c_str(), nullptr))
        << "mean of " << arrays[i].size() << " values; NumPy " << lines[i];
  }
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(PythonRound(values[i], 5), std::strtod(lines[arrays.size() + i].c_str(), nullptr))
        << absl::StrCat(values[i]) << "; Python " << lines[arrays.size() + i];
  }
}

}  // namespace
}  // namespace prolong::evaluator::metrics
