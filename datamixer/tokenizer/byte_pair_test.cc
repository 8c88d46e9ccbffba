#include "datamixer/tokenizer/internal/byte_pair.h"

#include <random>

#include "gtest/gtest.h"

namespace prolong::tokenizer::internal {
namespace {

RankMap SingleBytes() {
  RankMap ranks;
  for (int b = 0; b < 256; ++b) ranks[std::string(1, static_cast<char>(b))] = b;
  return ranks;
}

std::vector<uint32_t> Scan(const RankMap& ranks, const std::string& piece) {
  std::vector<uint32_t> out;
  BytePairEncodeByScan(ranks, piece, out);
  return out;
}

std::vector<uint32_t> Heap(const RankMap& ranks, const std::string& piece) {
  std::vector<uint32_t> out;
  BytePairEncodeByHeap(ranks, piece, out);
  return out;
}

TEST(BytePairTest, MergesLowestRankFirst) {
  RankMap ranks = SingleBytes();
  ranks["bc"] = 300;
  ranks["ab"] = 301;
  ranks["abc"] = 302;
  ranks["abcd"] = 303;
  ranks["bcd"] = 304;
  ranks["cd"] = 305;
  for (auto encode : {Scan, Heap}) {
    // a b c d -> a (bc) d -> (abc) d, since abc (302) beats bcd (304) -> (abcd).
    EXPECT_EQ(encode(ranks, "abcd"), (std::vector<uint32_t>{303}));
    // b c d e -> (bc) d e -> (bcd) e: "cd" (305) never forms once "bc" (300) took the c.
    EXPECT_EQ(encode(ranks, "bcde"), (std::vector<uint32_t>{304, 'e'}));
    EXPECT_EQ(encode(ranks, "abx"), (std::vector<uint32_t>{301, 'x'}));
  }
}

TEST(BytePairTest, TiesGoToTheLeftmostPair) {
  RankMap ranks = SingleBytes();
  ranks["aa"] = 300;
  for (auto encode : {Scan, Heap}) {
    EXPECT_EQ(encode(ranks, "aaa"), (std::vector<uint32_t>{300, 'a'}));
    EXPECT_EQ(encode(ranks, "aaaaa"), (std::vector<uint32_t>{300, 300, 'a'}));
  }
}

// The heap implementation must agree with the scan on every input, whatever the ranks.
TEST(BytePairTest, HeapAgreesWithScanOnRandomRanksAndPieces) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab c\n";
  for (int round = 0; round < 50; ++round) {
    RankMap ranks = SingleBytes();
    std::uniform_int_distribution<int> length(2, 6), letter(0, alphabet.size() - 1);
    for (uint32_t rank = 256; rank < 400; ++rank) {
      std::string token;
      for (int i = length(rng); i > 0; --i) token += alphabet[letter(rng)];
      ranks.emplace(token, rank);
    }
    for (int trial = 0; trial < 20; ++trial) {
      std::string piece;
      const int size = std::uniform_int_distribution<int>(2, 600)(rng);
      for (int i = 0; i < size; ++i) piece += alphabet[letter(rng)];
      ASSERT_EQ(Scan(ranks, piece), Heap(ranks, piece)) << piece;
    }
  }
}

TEST(BytePairTest, LongRunsAreFastWithTheHeap) {
  RankMap ranks = SingleBytes();
  std::string token = " ";
  for (uint32_t rank = 256; token.size() < 64; ++rank) {
    token += token;
    ranks[token] = rank;
  }
  const std::string piece(1 << 20, ' ');  // 1 MiB of spaces: quadratic would take minutes.
  std::vector<uint32_t> out;
  BytePairEncode(ranks, piece, out);
  EXPECT_EQ(out.size(), piece.size() / 64);
}

}  // namespace
}  // namespace prolong::tokenizer::internal
