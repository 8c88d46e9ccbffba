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
  for (CpScheme scheme : {CpScheme::kAllGather, CpScheme::kRing}) {
    absl::StatusOr<CpScheme> parsed = ParseCpScheme(CpSchemeName(scheme));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, scheme);
  }
  EXPECT_EQ(CpSchemeNames(), (std::vector<std::string>{"all-gather", "ring"}));
}

TEST(CpSchemeTest, AnUnknownNameListsTheAcceptedOnes) {
  EXPECT_THAT(ParseCpScheme("allgather"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"allgather\""), HasSubstr("all-gather, ring"))));
}

}  // namespace
}  // namespace prolong::parallel
