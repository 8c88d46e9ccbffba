// Python's string behaviours, the record reader, sentence splitting, the word list and HELMET's
// length filter and pre-truncation.
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_matchers.h"
#include "evaluator/tasks/internal/py_text.h"
#include "evaluator/tasks/internal/records.h"
#include "evaluator/tasks/internal/reference_length.h"
#include "evaluator/tasks/internal/sentences.h"
#include "evaluator/tasks/internal/test_tokenizer.h"
#include "evaluator/tasks/internal/word_lists.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks::internal {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTestdata[] = "evaluator/tasks/testdata";

TEST(FormatTemplateTest, NamedFieldsAndEscapedBraces) {
  const Json fields = {{"context", "C"}, {"question", "Q?"}, {"n", 3}, {"flag", true}};
  ASSERT_OK_AND_ASSIGN(std::string out,
                       FormatTemplate("Only output \"label: {{label}}\".\n{context}|{question}|"
                                      "{n}|{flag}",
                                      fields));
  EXPECT_EQ(out, "Only output \"label: {label}\".\nC|Q?|3|True");
}

TEST(FormatTemplateTest, MissingFieldAndStrayBraceAreErrors) {
  const Json fields = {{"context", "C"}};
  EXPECT_THAT(FormatTemplate("{context} {question}", fields),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'question'")));
  EXPECT_THAT(FormatTemplate("a } b", fields), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FormatTemplate("a { b", fields), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PyStripTest, StripsAsciiAndUnicodeWhitespace) {
  EXPECT_EQ(PyStrip(" \t\n x y \r\n"), "x y");
  EXPECT_EQ(PyStrip("\xc2\xa0"
                    "a\xe3\x80\x80"),
            "a");                              // U+00A0 and U+3000
  EXPECT_EQ(PyStrip("\xc3\xa9"), "\xc3\xa9");  // é is not whitespace
  EXPECT_EQ(PyStrip("   "), "");
  EXPECT_EQ(CollapseWhitespace("a \n\t b\xe2\x80\x83"
                               "c"),
            "a b c");  // U+2003
}

TEST(SentencesTest, SplitsAtSentenceEndsOnly) {
  EXPECT_THAT(
      SplitSentences("Hello there. Mr. Smith arrived at 5 p.m. today! Did he? \"Yes.\" "
                     "He left. e.g. this stays. J. R. R. Tolkien wrote. 3 went."),
      ElementsAre("Hello there.", "Mr. Smith arrived at 5 p.m. today!", "Did he?", "\"Yes.\"",
                  "He left. e.g. this stays.", "J. R. R. Tolkien wrote.", "3 went."));
  EXPECT_TRUE(SplitSentences("  ").empty());
}

TEST(WordListsTest, ProductIsTheSortedHyphenatedList) {
  ASSERT_GT(NumWords(), 100000u);
  for (size_t i = 1; i < Adjectives().size(); ++i) {
    ASSERT_LT(std::string(Adjectives()[i - 1]), Adjectives()[i]);
  }
  for (size_t i = 1; i < Nouns().size(); ++i) ASSERT_LT(std::string(Nouns()[i - 1]), Nouns()[i]);
  // RULER indexes sorted(set(f"{adj}-{noun}")); the product order is that order.
  for (size_t i = 1; i < NumWords(); i += 97) ASSERT_LT(WordAt(i - 1), WordAt(i));
  EXPECT_EQ(WordAt(0), absl::StrCat(Adjectives()[0], "-", Nouns()[0]));
}

TEST(RecordsTest, MalformedLinesAreNamedSkippedAndCounted) {
  const std::string path = absl::StrCat(kTestdata, "/kilt/nq_test.jsonl");
  auto needs_answers = [](const Json& record) { return GetStringList(record, "answers").status(); };
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(std::vector<SourceRecord> records,
                       ReadAllRecords(path, /*strict=*/false, report, needs_answers));
  EXPECT_EQ(records.size(), 4u);
  EXPECT_EQ(report.records_read, 4);
  EXPECT_EQ(report.records_skipped, 2);
  ASSERT_EQ(report.problems.size(), 2u);
  EXPECT_THAT(report.problems[0], HasSubstr("nq_test.jsonl:3: not valid JSON"));
  EXPECT_THAT(report.problems[1], HasSubstr("nq_test.jsonl:5: field 'answers' is missing"));
  EXPECT_EQ(records[2].where, path + ":4");

  LoadReport strict_report;
  EXPECT_THAT(ReadAllRecords(path, /*strict=*/true, strict_report, needs_answers),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nq_test.jsonl:3:")));
  EXPECT_THAT(ReadAllRecords(absl::StrCat(kTestdata, "/kilt/missing.jsonl"), false, report),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.jsonl")));
}

TEST(RecordsTest, JsonFilesHoldADataList) {
  const std::string path = ::testing::TempDir() + "/records.json";
  std::ofstream(path) << R"({"data": [{"question": "a"}, 7, {"question": "b"}]})";
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(std::vector<SourceRecord> records, ReadAllRecords(path, false, report));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].json["question"], "b");
  EXPECT_THAT(report.problems, ElementsAre(HasSubstr("records.json: data[1]: not a JSON object")));
}

TEST(RecordsTest, RecordsCanBeReadAgainByOffset) {
  const std::string path = absl::StrCat(kTestdata, "/kilt/nq_test.jsonl");
  LoadReport report;
  ASSERT_OK_AND_ASSIGN(std::vector<SourceRecord> records, ReadAllRecords(path, false, report));
  ASSERT_OK_AND_ASSIGN(Json again, ReadRecordAt(path, records.back().offset));
  EXPECT_EQ(again, records.back().json);
}

std::string LongText() {
  std::vector<std::string> sentences;
  for (int i = 0; i < 400; ++i) {
    sentences.push_back(
        absl::StrCat("Sentence number ", i, " is about the ", i % 7, " rivers, and it ends here."));
  }
  return absl::StrJoin(sentences, " ");
}

TEST(ReferenceLengthTest, CountsWithBos) {
  auto tokenizer = Llama3TestTokenizer();
  const std::string text = "the cat sat on the mat";
  const int64_t tokens = static_cast<int64_t>(tokenizer->Encode(text).size()) + 1;
  EXPECT_TRUE(HasAtLeastTokens(*tokenizer, text, tokens));
  EXPECT_FALSE(HasAtLeastTokens(*tokenizer, text, tokens + 1));
  const std::string long_text = LongText();
  const int64_t long_tokens = static_cast<int64_t>(tokenizer->Encode(long_text).size()) + 1;
  EXPECT_TRUE(HasAtLeastTokens(*tokenizer, long_text, 1000));
  EXPECT_TRUE(HasAtLeastTokens(*tokenizer, long_text, long_tokens));
  EXPECT_FALSE(HasAtLeastTokens(*tokenizer, long_text, long_tokens + 1));
}

TEST(ReferenceLengthTest, TruncatesLikeTruncateLlama2) {
  auto tokenizer = Llama3TestTokenizer();
  const std::string text = LongText();
  const std::vector<uint32_t> ids = tokenizer->Encode(text);
  // Short enough: unchanged.
  ASSERT_OK_AND_ASSIGN(std::string same,
                       TruncateToTokens(*tokenizer, text, static_cast<int64_t>(ids.size()) + 1));
  EXPECT_EQ(same, text);
  // Too long: the first max - len(postfix tokens with BOS) tokens, then the postfix.
  const int64_t max_tokens = 300;
  const size_t postfix = tokenizer->Encode(kOmittedPostfix).size() + 1;
  ASSERT_OK_AND_ASSIGN(std::string cut, TruncateToTokens(*tokenizer, text, max_tokens));
  const std::vector<uint32_t> kept(ids.begin(), ids.begin() + (max_tokens - postfix));
  EXPECT_EQ(cut, *tokenizer->Decode(kept) + kOmittedPostfix);
  EXPECT_LE(static_cast<int64_t>(tokenizer->Encode(cut).size()) + 1, max_tokens);
  EXPECT_TRUE(absl::StartsWith(text, cut.substr(0, cut.size() - strlen(kOmittedPostfix))));
}

TEST(ReferenceLengthTest, CutsNeverSplitACharacter) {
  auto tokenizer = Llama3TestTokenizer();
  // Each é is two tokens in the byte-level test tokenizer.
  const std::string text = "\xc3\xa9\xc3\xa9\xc3\xa9";
  const std::vector<uint32_t> ids = tokenizer->Encode(text);
  ASSERT_EQ(ids.size(), 6u);
  ASSERT_OK_AND_ASSIGN(std::string prefix,
                       DecodePrefix(*tokenizer, absl::MakeConstSpan(ids).subspan(0, 3)));
  EXPECT_EQ(prefix, "\xc3\xa9");
  ASSERT_OK_AND_ASSIGN(std::string suffix,
                       DecodeSuffix(*tokenizer, absl::MakeConstSpan(ids).subspan(3)));
  EXPECT_EQ(suffix, "\xc3\xa9");
}

}  // namespace
}  // namespace prolong::evaluator::tasks::internal
