#include "trainer/parallel/cp_scheme.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace prolong::parallel {
namespace {

TEST(CpSchemeTest, NamesParseBack) {
  for (CpScheme scheme : {CpScheme::kAllGather, CpScheme::kRing}) {
    absl::StatusOr<CpScheme> parsed = ParseCpScheme(CpSchemeName(scheme));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, scheme);
  }
  EXPECT_EQ(CpSchemeNames(), (std::vector<std::string>{"all-gather", "ring"}));
}

TEST(CpSchemeTest, AnUnknownNameListsTheAcceptedOnes) {
  const absl::Status status = ParseCpScheme("allgather").status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "\"allgather\"")) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "all-gather, ring")) << status;
}

}  // namespace
}  // namespace prolong::parallel
