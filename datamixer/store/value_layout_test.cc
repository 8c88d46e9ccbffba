#include "datamixer/store/internal/value_layout.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace prolong::store::internal {
namespace {

TEST(ValueLayoutTest, ChunkKeysSortInOrderRightAfterTheirDocument) {
  const std::string document = DocumentKey("books", std::string(16, '\xff'));
  EXPECT_EQ(document, std::string("books\0", 6) + std::string(16, '\xff'));
  std::vector<std::string> keys = {document};
  for (int64_t index : {0, 1, 255, 256, 65536, 1 << 24}) keys.push_back(ChunkKey(document, index));
  for (size_t i = 1; i < keys.size(); ++i) {
    EXPECT_LT(keys[i - 1], keys[i]) << "chunk key " << i;
    EXPECT_EQ(keys[i].substr(0, document.size()), document);
  }
  EXPECT_EQ(ChunkKey(document, 258), document + std::string("\0\0\0\1\2", 5));
  // Before any key of the next document of the domain.
  EXPECT_LT(ChunkKey(DocumentKey("books", std::string(16, 'a')), 1 << 24),
            DocumentKey("books", std::string(15, 'a') + "b"));
}

TEST(ValueLayoutTest, HeadsRoundTripAndMalformedOnesAreRefused) {
  const ChunkedHead head{1 << 20, 16384};
  const std::string value = EncodeHead(head);
  EXPECT_TRUE(IsChunkedHead(value));
  ChunkedHead parsed;
  ASSERT_TRUE(ParseHead(value, &parsed));
  EXPECT_EQ(parsed.length, 1 << 20);
  EXPECT_EQ(parsed.chunk_tokens, 16384);
  EXPECT_EQ(parsed.chunks(), 64);
  EXPECT_EQ(parsed.ChunkLength(63), 16384);

  const ChunkedHead ragged{100, 30};
  EXPECT_EQ(ragged.chunks(), 4);
  EXPECT_EQ(ragged.ChunkLength(0), 30);
  EXPECT_EQ(ragged.ChunkLength(3), 10);

  for (const std::string& bad : {
           std::string(),
           value.substr(0, value.size() - 1),
           value + "x",
           EncodeHead({10, 0}),
           EncodeHead({10, 10}),
           EncodeHead({10, 20}),
           EncodeHead({int64_t{1} << 50, 1}),
           std::string("\x02\x01\x00", 3),
       }) {
    EXPECT_FALSE(ParseHead(bad, &parsed)) << "head of " << bad.size() << " bytes";
  }
}

TEST(ValueLayoutTest, WholeValuesNeverLookLikeHeads) {
  EXPECT_FALSE(IsChunkedHead(EncodeTokens({'C', 'C'})));
  EXPECT_FALSE(IsChunkedHead(std::string("\0\1", 2)));
  EXPECT_FALSE(IsChunkedHead(std::string("\1\0", 2)));
}

TEST(ValueLayoutTest, TokensTakeTheNarrowestWidth) {
  struct Case {
    std::vector<uint32_t> tokens;
    int width;
  };
  for (const Case& c : std::vector<Case>{{{0, 65535}, 2},
                                         {{65536, 1}, 3},
                                         {{16777215}, 3},
                                         {{16777216, 7}, 4},
                                         {{4294967295u, 0, 300}, 4}}) {
    const std::string value = EncodeTokens(c.tokens);
    EXPECT_EQ(value[0], c.width);
    ASSERT_EQ(EncodedTokenCount(value), static_cast<int64_t>(c.tokens.size()));
    std::vector<uint32_t> decoded(c.tokens.size());
    DecodeTokens(value, 0, decoded.size(), decoded.data());
    EXPECT_EQ(decoded, c.tokens);
    uint32_t last = 0;
    DecodeTokens(value, c.tokens.size() - 1, 1, &last);
    EXPECT_EQ(last, c.tokens.back());
  }
  EXPECT_EQ(EncodedTokenCount(""), -1);
  EXPECT_EQ(EncodedTokenCount(std::string("\x05\0\0\0\0\0", 6)), -1);  // No such width.
  EXPECT_EQ(EncodedTokenCount(std::string("\x03\0\0\0\0", 5)), -1);    // A partial token.
  EXPECT_EQ(EncodedTokenCount(std::string("\x03", 1)), 0);
}

}  // namespace
}  // namespace prolong::store::internal
