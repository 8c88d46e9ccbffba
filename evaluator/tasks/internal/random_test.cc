// The random streams against the libraries they reproduce. Expected values were printed by
// CPython 3.11's `random`, numpy 1.24's default_rng and hashlib, and by HELMET's
// balance_labels and sampling code run on the same inputs.
#include <numeric>

#include "absl/strings/str_format.h"
#include "common/status_matchers.h"
#include "evaluator/tasks/internal/loaders.h"
#include "evaluator/tasks/internal/numpy_random.h"
#include "evaluator/tasks/internal/py_random.h"
#include "evaluator/tasks/internal/py_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::evaluator::tasks::internal {
namespace {

using ::testing::ElementsAre;

TEST(PyRandomTest, MatchesCPythonStream) {
  PyRandom random(42);  // random.Random(42).getrandbits(32), twice.
  EXPECT_EQ(random.NextUint32(), 2746317213u);
  EXPECT_EQ(random.NextUint32(), 478163327u);
}

TEST(PyRandomTest, LargeSeedsUseEveryWord) {
  PyRandom random((uint64_t{1} << 40) + 5);  // random.Random(2**40 + 5)
  EXPECT_EQ(random.GetRandBits(32), 2166296868u);
  EXPECT_EQ(random.GetRandBits(64), 4954877310874744636ull);
  EXPECT_EQ(random.RandBelow(1000000000000ull), 579938387080ull);
}

TEST(PyRandomTest, SampleUsesPoolAndSetAlgorithms) {
  PyRandom pool(42);  // random.Random(42).sample(range(1000), 100)[:5]
  std::vector<size_t> drawn = pool.Sample(1000, 100);
  EXPECT_THAT(std::vector<size_t>(drawn.begin(), drawn.begin() + 5),
              ElementsAre(654, 114, 25, 759, 281));
  PyRandom set(42);  // random.Random(42).sample(range(100000), 10)
  EXPECT_THAT(set.Sample(100000, 10),
              ElementsAre(83810, 14592, 3278, 97196, 36048, 32098, 29256, 18289, 96530, 13434));
}

TEST(PyRandomTest, ShuffleMatches) {
  PyRandom random(123456789012ull);
  std::vector<int> values(10);
  std::iota(values.begin(), values.end(), 0);
  random.Shuffle(values);
  EXPECT_THAT(values, ElementsAre(2, 8, 5, 7, 9, 3, 1, 4, 0, 6));
}

TEST(PyRandomTest, UuidBitsAndRandInt) {
  PyRandom random(7);  // '%032x' % getrandbits(128), then randint(1000000, 9999999)
  const std::array<uint8_t, 16> bytes = random.GetRandBits128();
  std::string hex;
  for (uint8_t b : bytes) hex += absl::StrFormat("%02x", b);
  EXPECT_EQ(hex, "6513270e269e0d37f2a74de452e6b438");
  EXPECT_EQ(random.RandInt(1000000, 9999999), 1810111);
}

TEST(NumpyPermutationTest, MatchesDefaultRng) {
  EXPECT_THAT(NumpyPermutation(42, 10), ElementsAre(5, 6, 0, 7, 3, 2, 4, 9, 1, 8));
  EXPECT_THAT(NumpyPermutation(1234567890, 7), ElementsAre(5, 3, 6, 1, 4, 0, 2));
  EXPECT_THAT(NumpyPermutation(0, 5), ElementsAre(2, 4, 3, 0, 1));
  const std::vector<size_t> large = NumpyPermutation(2147483647, 100000);
  EXPECT_EQ(large[0], 50248u);
  EXPECT_EQ(large[1], 89934u);
  EXPECT_EQ(large[99999], 50794u);
  EXPECT_TRUE(NumpyPermutation(3, 0).empty());
}

TEST(HelmetSamplingTest, BalanceLabelsMatchesHelmet) {
  const std::vector<int64_t> labels = {2, 0, 1, 2, 2, 0, 1, 3, 3, 0, 2, 1, 0, 3, 2};
  EXPECT_THAT(BalanceLabels(labels, 7, 5), ElementsAre(9, 11, 8, 14, 7, 4, 12));
  EXPECT_THAT(BalanceLabels(labels, 12, 1234567),
              ElementsAre(10, 7, 11, 9, 3, 13, 1, 2, 12, 0, 6, 8));
  // More rounds than items of a label: HELMET draws again with replacement.
  EXPECT_THAT(BalanceLabels(labels, 40, 9),
              ElementsAre(9, 2, 7, 10, 2, 12, 4, 13, 1, 11, 3, 7, 6, 0, 8, 9, 5, 2, 7, 14, 11, 0, 8,
                          12, 12, 6, 13, 4, 8, 9, 11, 10, 2, 3, 13, 5, 1, 6, 14, 7));
}

TEST(HelmetSamplingTest, SampleByKeyDrawsFromSortedDistinctKeys) {
  std::vector<nlohmann::ordered_json> keys;
  for (int i : {5, 3, 9, 1, 7, 3, 12, 0}) keys.push_back("q" + std::to_string(i));
  // random.seed(42); random.sample(sorted(set(keys)), 3) == ['q7', 'q0', 'q9'].
  ASSERT_OK_AND_ASSIGN(std::vector<size_t> kept, SampleByKey(keys, 42, 3));
  EXPECT_THAT(kept, ElementsAre(2, 4, 7));

  std::vector<nlohmann::ordered_json> numbers = {10, 2, 33, 2, 7};
  // Integers sort numerically; both rows of a drawn key stay.
  ASSERT_OK_AND_ASSIGN(kept, SampleByKey(numbers, 42, 2));
  EXPECT_THAT(kept, ElementsAre(1, 2, 3));

  std::vector<nlohmann::ordered_json> mixed = {1, "a"};
  EXPECT_THAT(SampleByKey(mixed, 42, 1),
              prolong::testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HelmetSamplingTest, ShuffledDistinctDropsLaterDuplicates) {
  const std::vector<std::string> keys = {"a", "b", "a", "c", "d", "b", "e"};
  EXPECT_EQ(Sha256Mod2To31("q1"), 795493323u);
  ASSERT_OK_AND_ASSIGN(std::vector<size_t> picked, ShuffledDistinct(keys, 795493323u, 3));
  EXPECT_THAT(picked, ElementsAre(0, 5, 6));
  EXPECT_THAT(ShuffledDistinct(keys, 1, 6),
              prolong::testing::StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(HelmetSamplingTest, Sha256Seeds) {
  EXPECT_EQ(Sha256Mod2To31("who wrote the song yesterday"), 1550754997u);
  EXPECT_EQ(Sha256Mod2To31(""), 2018687061u);
  EXPECT_EQ(Sha256PlusSeedMod2To31("What does UNESCO stand for ?", 42), 37065397u);
  // random.seed(sha256("x") % 2**31); random.shuffle(list(range(6))).
  std::vector<int> mapping = {0, 1, 2, 3, 4, 5};
  PyRandom(Sha256Mod2To31("x")).Shuffle(mapping);
  EXPECT_THAT(mapping, ElementsAre(0, 1, 4, 5, 2, 3));
}

}  // namespace
}  // namespace prolong::evaluator::tasks::internal
