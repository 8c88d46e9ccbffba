#include "evaluator/metrics/answer.h"

#include <string>
#include <vector>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::metrics {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

TEST(NormalizeAnswerTest, LowercasesDropsAsciiPunctuationArticlesAndExtraSpace) {
  EXPECT_EQ(NormalizeAnswer("The  Science-fiction, Novel!"), "sciencefiction novel");
  EXPECT_EQ(NormalizeAnswer("  An apple\ta day \n"), "apple day");
  EXPECT_EQ(NormalizeAnswer("THE END"), "end");
  EXPECT_EQ(NormalizeAnswer(""), "");
  EXPECT_EQ(NormalizeAnswer("the a an"), "");
  // Punctuation goes before articles: "a_b" and "a-b" become one word "ab".
  EXPECT_EQ(NormalizeAnswer("a_b a-b l'a"), "ab ab la");
  // Articles are whole words only.
  EXPECT_EQ(NormalizeAnswer("theatre and a1 anna"), "theatre and a1 anna");
}

TEST(NormalizeAnswerTest, UnicodeLowercasingAndWordsAsPythonSeesThem) {
  EXPECT_EQ(NormalizeAnswer("ÉCOLE Straße"), "école straße");
  // Final sigma: the last capital sigma of a word lowers to U+03C2.
  EXPECT_EQ(NormalizeAnswer("ΣΟΦΟΣ"), "\u03c3\u03bf\u03c6\u03bf\u03c2");
  // U+0130 lowers to "i" and a combining dot.
  EXPECT_EQ(NormalizeAnswer("İstanbul"), "i\u0307stanbul");
  // Accented letters are word characters: "a" beside "é" is no article.
  EXPECT_EQ(NormalizeAnswer("éa a café"), "éa café");
  // Only ASCII punctuation is removed; others stay, with no space inserted anywhere.
  EXPECT_EQ(NormalizeAnswer("«hello»—world"), "«hello»—world");
  // Unicode spaces (here NO-BREAK SPACE and IDEOGRAPHIC SPACE) separate words.
  EXPECT_EQ(NormalizeAnswer("a\u00a0b\u3000c"), "b c");
  // CJK stays.
  EXPECT_EQ(NormalizeAnswer("東京 Tower"), "東京 tower");
}

TEST(ExactMatchTest, ComparesNormalizedText) {
  EXPECT_TRUE(ExactMatch("The Answer.", "answer"));
  EXPECT_FALSE(ExactMatch("11", "1"));
  EXPECT_TRUE(ExactMatch("", "the"));  // both normalize to ""
}

TEST(SubstringExactMatchTest, IsAPlainSubstringOfNormalizedText) {
  EXPECT_TRUE(SubstringExactMatch("11", "1"));
  EXPECT_TRUE(SubstringExactMatch("It is in Paris, France.", "paris france"));
  EXPECT_FALSE(SubstringExactMatch("Paris", "Paris, France"));
  EXPECT_TRUE(SubstringExactMatch("anything", ""));
  EXPECT_TRUE(SubstringExactMatch("", "The"));  // the gold normalizes to ""
  // Punctuation removal joins words: "new-york" is found in "newyork".
  EXPECT_TRUE(SubstringExactMatch("newyork", "New-York"));
}

TEST(TokenF1Test, ByHand) {
  // "cat sat on mat" against "cat on mat": 3 shared, P = 3/4, R = 1, F1 = 6/7.
  EXPECT_DOUBLE_EQ(TokenF1("the cat sat on the mat", "cat on mat"), 6.0 / 7.0);
  // Repeated tokens count at most as often as on both sides: x:1, y:1 of 3 and 3.
  EXPECT_DOUBLE_EQ(TokenF1("x x y", "x y y"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(TokenF1("Paris", "paris"), 1.0);
  EXPECT_EQ(TokenF1("", "paris"), 0.0);
  EXPECT_EQ(TokenF1("london", "paris"), 0.0);
}

TEST(TokenF1Test, YesNoNoAnswerMustMatchExactly) {
  EXPECT_EQ(TokenF1("yes", "yes it is"), 0.0);  // would be 0.5 on tokens
  EXPECT_EQ(TokenF1("yes it is", "yes"), 0.0);
  EXPECT_EQ(TokenF1("no answer", "noanswer"), 0.0);
  EXPECT_EQ(TokenF1("Yes.", "yes"), 1.0);
  EXPECT_DOUBLE_EQ(TokenF1("no way", "no"), 0.0);
  EXPECT_DOUBLE_EQ(TokenF1("not yes", "yes sir"), 0.5);  // neither side is exactly yes/no
}

TEST(ParseOutputTest, RestOfLineAfterFirstPrefixAnywhere) {
  EXPECT_EQ(ParseOutput("Answer: Paris\nMore text"), "Paris");
  EXPECT_EQ(ParseOutput("The answer: 42 is it"), "42 is it");
  EXPECT_EQ(ParseOutput("ANSWER:   Paris  "), "Paris");
  EXPECT_EQ(ParseOutput("  first line  \nAnswer: x"), "x");
  EXPECT_EQ(ParseOutput("Answer: x\r\ny"), "x");
  EXPECT_EQ(ParseOutput("Answer: one\nAnswer: two"), "one");
}

TEST(ParseOutputTest, EdgeCases) {
  EXPECT_EQ(ParseOutput("Answer:\nParis"), "");
  EXPECT_EQ(ParseOutput(""), "");
  EXPECT_EQ(ParseOutput("no prefix here\nsecond"), "no prefix here");
  EXPECT_EQ(ParseOutput("\nsecond"), "");
  // A repeated prefix is removed once more, case-insensitively.
  EXPECT_EQ(ParseOutput("Answer: answer: Paris"), "Paris");
  EXPECT_EQ(ParseOutput("Answer: Answer: Answer: x"), "Answer: x");
  EXPECT_EQ(ParseOutput("answer:: x"), ": x");
  // re.IGNORECASE equates "s" with LATIN SMALL LETTER LONG S.
  EXPECT_EQ(ParseOutput("an\u017fwer: q\nAnswer: r"), "q");
  EXPECT_EQ(ParseOutput("Corresponding value: 1a2b-3c\nKey: x", "corresponding value:"), "1a2b-3c");
  EXPECT_EQ(ParseOutput("label: 7", "label:"), "7");
  EXPECT_EQ(ParseOutput("Summary:\tA long story.\n\nMore.", "Summary:"), "A long story.");
}

TEST(FlattenGoldsTest, EachShape) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> one, FlattenGolds(Json("Paris")));
  EXPECT_THAT(one, ElementsAre("Paris"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> list, FlattenGolds(Json{"a", "b"}));
  EXPECT_THAT(list, ElementsAre("a", "b"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> nested,
                       FlattenGolds(Json::parse(R"([["a", "b"], [], ["c"]])")));
  EXPECT_THAT(nested, ElementsAre("a", "b", "c"));
}

TEST(FlattenGoldsTest, RejectsWhatHelmetCannotScore) {
  EXPECT_THAT(FlattenGolds(Json::array()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(FlattenGolds(Json(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("answer")));
  EXPECT_THAT(FlattenGolds(Json::parse(R"([["a"], "b"])")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("answer[1]")));
  EXPECT_THAT(FlattenGolds(Json::parse(R"(["a", 2])")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("answer[1]")));
  EXPECT_THAT(FlattenGolds(Json::parse(R"([[]])")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST(MaxOverGoldsTest, TakesTheBestGold) {
  const std::vector<std::string> golds = {"London", "Paris", "City of Light"};
  EXPECT_EQ(
      MaxOverGolds([](auto p, auto g) { return ExactMatch(p, g) ? 1.0 : 0.0; }, "paris", golds),
      1.0);
  // Against "City of Light": P = 2/2, R = 2/3.
  EXPECT_DOUBLE_EQ(MaxOverGolds(TokenF1, "city of", golds), 0.8);
}

}  // namespace
}  // namespace prolong::evaluator::metrics
