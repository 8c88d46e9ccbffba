#include "datamixer/tokenizer/utf8.h"

#include "gtest/gtest.h"

namespace prolong::tokenizer {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidTextIsUntouched) {
  for (const char* text : {"", "plain ascii", "caf\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87",
                           "\xF0\x9F\x98\x80 emoji", "\xF4\x8F\xBF\xBF"}) {
    EXPECT_EQ(FindInvalidUtf8(text), std::string(text).size()) << text;
    EXPECT_EQ(ReplaceInvalidUtf8(text), text);
  }
}

TEST(Utf8Test, EachMaximalSubpartBecomesOneReplacement) {
  struct Case {
    std::string in, out;
  };
  const std::string r = kFffd;
  // Examples from the Unicode standard (U+FFFD substitution of maximal subparts) and WHATWG.
  const Case cases[] = {
      {"a\x80"
       "b",
       "a" + r + "b"},                          // Lone continuation byte.
      {"\xC3", r},                              // Truncated at the end.
      {"\xE2\x82", r},                          // Truncated 3-byte: one U+FFFD.
      {"\xE2\x82z", r + "z"},                   // Cut by an ASCII byte.
      {"\xF0\x9F\x98", r},                      // Truncated 4-byte.
      {"\xC0\xAF", r + r},                      // Overlong lead: two.
      {"\xE0\x80\xAF", r + r + r},              // Overlong 3-byte: three.
      {"\xED\xA0\x80", r + r + r},              // Surrogate: three.
      {"\xF4\x90\x80\x80", r + r + r + r},      // Above U+10FFFF: four.
      {"\xFF\xFE", r + r},                      // Never valid.
      {"\xF1\x80\x80\xE1\x80\xC2", r + r + r},  // Three truncated sequences.
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
       "a" + r + r + r + "b" + r + "c" + r + r + "d"},  // The standard's Table 3-8.
  };
  for (const Case& c : cases) {
    EXPECT_LT(FindInvalidUtf8(c.in), c.in.size());
    EXPECT_EQ(ReplaceInvalidUtf8(c.in), c.out) << c.in;
  }
}

}  // namespace
}  // namespace prolong::tokenizer
