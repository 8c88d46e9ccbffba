#include "trainer/attention/padded_length.h"

#include <set>

#include "gtest/gtest.h"

namespace prolong::attention {
namespace {

TEST(PaddedDocumentLengthTest, ExamplesFromEachRange) {
  EXPECT_EQ(PaddedDocumentLength(1), 256);
  EXPECT_EQ(PaddedDocumentLength(256), 256);
  EXPECT_EQ(PaddedDocumentLength(257), 512);
  EXPECT_EQ(PaddedDocumentLength(2048), 2048);
  EXPECT_EQ(PaddedDocumentLength(2049), 2304);  // 2,048 / 8 = 256
  EXPECT_EQ(PaddedDocumentLength(4097), 4608);  // 4,096 / 8 = 512
  EXPECT_EQ(PaddedDocumentLength(32769), 36864);
  EXPECT_EQ(PaddedDocumentLength(65536), 65536);
  EXPECT_EQ(PaddedDocumentLength(65537), 73728);
}

TEST(PaddedDocumentLengthTest, BoundsPaddingAndShapes) {
  std::set<int64_t> shapes;
  for (int64_t length = 1; length <= 131072; ++length) {
    const int64_t padded = PaddedDocumentLength(length);
    ASSERT_GE(padded, length);
    ASSERT_EQ(padded % 256, 0) << length;
    if (length > 2048) {
      ASSERT_LE(padded * 8, length * 9) << length;  // at most 12.5% more
    }
    ASSERT_EQ(PaddedDocumentLength(padded), padded) << length;  // a padded length stays
    shapes.insert(padded);
  }
  // 8 up to 2,048, then 8 per octave: 2K-4K, ..., 64K-128K.
  EXPECT_EQ(shapes.size(), 8u + 8 * 6);
}

}  // namespace
}  // namespace prolong::attention
