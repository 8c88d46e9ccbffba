#include "datamixer/plan/pack.h"

#include <map>
#include <numeric>
#include <random>
#include <set>

#include "common/status_matchers.h"
#include "gtest/gtest.h"

namespace prolong::plan {
namespace {

std::vector<std::vector<Piece>> Epoch(Packer& packer) {
  std::vector<std::vector<Piece>> sequences;
  for (std::vector<Piece> pieces = packer.Next(); !pieces.empty(); pieces = packer.Next()) {
    int64_t tokens = 0;
    for (const Piece& piece : pieces) tokens += piece.length;
    EXPECT_EQ(tokens, 10) << "every sequence is exactly seq_len";
    sequences.push_back(std::move(pieces));
  }
  EXPECT_EQ(static_cast<int64_t>(sequences.size()), packer.sequences_per_epoch());
  return sequences;
}

TEST(PackTest, LongSequencesAreWholeChunksOfLongEnoughDocuments) {
  absl::StatusOr<Packer> packer = Packer::Create(Packing::kLong, {10, 25, 7, 40}, 10, 0, 1);
  ASSERT_OK(packer);
  std::set<std::pair<int64_t, int64_t>> chunks;
  for (const std::vector<Piece>& pieces : Epoch(*packer)) {
    ASSERT_EQ(pieces.size(), 1u);
    EXPECT_EQ(pieces[0].offset % 10, 0);
    EXPECT_NE(pieces[0].document, 2) << "a 7-token document is shorter than seq_len";
    chunks.insert({pieces[0].document, pieces[0].offset});
  }
  EXPECT_EQ(chunks, (std::set<std::pair<int64_t, int64_t>>{
                        {0, 0}, {1, 0}, {1, 10}, {3, 0}, {3, 10}, {3, 20}, {3, 30}}));

  packer = Packer::Create(Packing::kLong, {10, 25, 7, 40}, 10, 30, 1);  // min_doc_tokens 30.
  ASSERT_OK(packer);
  EXPECT_EQ(packer->sequences_per_epoch(), 4);
}

TEST(PackTest, ShortPackingCoversEveryTokenOnceAndCarriesTheCutTail) {
  const std::vector<int64_t> lengths = {3, 4, 5, 6, 12, 1};
  absl::StatusOr<Packer> packer = Packer::Create(Packing::kShort, lengths, 10, 0, 42);
  ASSERT_OK(packer);
  const std::vector<std::vector<Piece>> sequences = Epoch(*packer);
  EXPECT_EQ(sequences.size(), 3u);  // 31 tokens: three full sequences, one token left over.
  // Pieces, in order, walk documents contiguously: each continues where the last one stopped.
  std::map<int64_t, int64_t> next_offset;
  int64_t covered = 0;
  for (const std::vector<Piece>& pieces : sequences) {
    for (const Piece& piece : pieces) {
      EXPECT_EQ(piece.offset, next_offset[piece.document]);
      next_offset[piece.document] = piece.offset + piece.length;
      EXPECT_LE(next_offset[piece.document], lengths[piece.document]);
      covered += piece.length;
    }
  }
  EXPECT_EQ(covered, 30);
  // Some document was cut and continued at the start of the next sequence.
  bool carried = false;
  for (size_t s = 1; s < sequences.size(); ++s) carried |= sequences[s][0].offset > 0;
  EXPECT_TRUE(carried);
}

TEST(PackTest, SftDropsTheCutTail) {
  absl::StatusOr<Packer> packer = Packer::Create(Packing::kSft, {6, 6, 6, 6, 6}, 10, 0, 7);
  ASSERT_OK(packer);
  const std::vector<std::vector<Piece>> sequences = Epoch(*packer);
  // 6 + 4 (cut, rest dropped), 6 + 4 (cut): two sequences, the fifth document cannot fill one.
  ASSERT_EQ(sequences.size(), 2u);
  std::set<int64_t> used;
  for (const std::vector<Piece>& pieces : sequences) {
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[0].offset, 0) << "no sequence starts mid-document";
    EXPECT_EQ(pieces[1].offset, 0);
    used.insert(pieces[0].document);
    used.insert(pieces[1].document);
  }
  EXPECT_EQ(used.size(), 4u);
}

TEST(PackTest, TheSeedDecidesTheOrderAndNothingElse) {
  std::vector<int64_t> lengths(200);
  std::iota(lengths.begin(), lengths.end(), 20);
  auto order = [&](uint64_t seed) {
    Packer packer = *Packer::Create(Packing::kShort, lengths, 10, 0, seed);
    std::vector<int64_t> documents;
    for (auto pieces = packer.Next(); !pieces.empty(); pieces = packer.Next()) {
      for (const Piece& piece : pieces) documents.push_back(piece.document);
    }
    return documents;
  };
  EXPECT_EQ(order(5), order(5));
  EXPECT_NE(order(5), order(6));
  // Fisher-Yates over mt19937_64 is fully specified: this order is the same on every platform.
  // A golden order, so that a platform or library change that alters it is caught.
  Packer packer = *Packer::Create(Packing::kShort, std::vector<int64_t>(10, 5), 10, 0, 2024);
  std::vector<int64_t> documents;
  for (auto pieces = packer.Next(); !pieces.empty(); pieces = packer.Next()) {
    for (const Piece& piece : pieces) documents.push_back(piece.document);
  }
  EXPECT_EQ(documents, (std::vector<int64_t>{1, 3, 6, 0, 2, 8, 7, 5, 9, 4}));
}

TEST(PackTest, APositionReproducesTheSequenceThatStartsThere) {
  for (Packing packing : {Packing::kLong, Packing::kShort, Packing::kSft}) {
    Packer packer = *Packer::Create(packing, {35, 4, 17, 60, 9, 23, 11}, 10, 0, 3);
    for (;;) {
      const PackPosition start = packer.position();
      const std::vector<Piece> pieces = packer.Next();
      if (pieces.empty()) break;
      EXPECT_EQ(packer.PiecesAt(start), pieces);
    }
    EXPECT_TRUE(packer.PiecesAt(packer.position()).empty()) << "past the epoch's end";
  }
}

TEST(PackTest, BadArgumentsNameTheField) {
  EXPECT_EQ(Packer::Create(Packing::kShort, {5}, 1, 0, 0).status().message(),
            "seq_len: must be at least 2, got 1");
  EXPECT_EQ(Packer::Create(Packing::kShort, {5, -1}, 4, 0, 0).status().message(),
            "lengths[1]: negative");
  EXPECT_EQ(Packer::Create(Packing::kShort, {5}, 4, -3, 0).status().message(),
            "min_doc_tokens: must not be negative, got -3");
}

}  // namespace
}  // namespace prolong::plan
