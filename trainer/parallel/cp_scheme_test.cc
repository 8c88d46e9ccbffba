#include "trainer/parallel/cp_scheme.h"

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::parallel {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(CpSchemeTest, NamesParseBack) {
  for (CpScheme scheme : {CpScheme::kAllGather, CpScheme::kRing, CpScheme::kUlysses}) {
    absl::StatusOr<CpScheme> parsed = ParseCpScheme(CpSchemeName(scheme));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, scheme);
  }
  EXPECT_EQ(CpSchemeNames(), (std::vector<std::string>{"all-gather", "ring", "ulysses"}));
}

TEST(CpSchemeTest, AnUnknownNameListsTheAcceptedOnes) {
  EXPECT_THAT(ParseCpScheme("allgather"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"allgather\""), HasSubstr("all-gather, ring, ulysses"))));
}

TEST(CpSchemeTest, UlyssesNeedsHeadsThatSplitAmongTheRanks) {
  // Llama 3 8B: 32 query heads, 8 kv heads.
  EXPECT_OK(CheckCpHeads(CpScheme::kUlysses, 32, 8, 8));
  EXPECT_OK(CheckCpHeads(CpScheme::kUlysses, 32, 8, 4));
  EXPECT_OK(CheckCpHeads(CpScheme::kUlysses, 32, 8, 16));  // each kv head serves two ranks
  EXPECT_OK(CheckCpHeads(CpScheme::kUlysses, 32, 8, 1));
  EXPECT_THAT(CheckCpHeads(CpScheme::kUlysses, 32, 8, 3),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("32 heads do not divide among 3 ranks")));
  EXPECT_THAT(CheckCpHeads(CpScheme::kUlysses, 24, 6, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the 6 kv heads to divide among the 4 cp ranks")));
  // The other schemes take any heads.
  EXPECT_OK(CheckCpHeads(CpScheme::kAllGather, 32, 8, 3));
  EXPECT_OK(CheckCpHeads(CpScheme::kRing, 24, 6, 4));
}

}  // namespace
}  // namespace prolong::parallel
