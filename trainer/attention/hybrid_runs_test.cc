#include "trainer/attention/hybrid_runs.h"

#include <tuple>
#include <vector>

#include "gtest/gtest.h"

namespace prolong::attention {
namespace {

std::vector<std::tuple<int64_t, int64_t, bool>> Runs(const std::vector<int64_t>& bounds,
                                                     int64_t long_document_tokens) {
  std::vector<std::tuple<int64_t, int64_t, bool>> runs;
  for (const HybridRun& run : HybridRuns(bounds, long_document_tokens)) {
    runs.emplace_back(run.begin, run.length, run.long_document);
  }
  return runs;
}

TEST(HybridRunsTest, LongDocumentsAloneAndTheShortOnesBetweenThemTogether) {
  // Documents of 100, 900, 100, 100, 1,000 and 1,000 tokens; long from 900 on.
  EXPECT_EQ(Runs({0, 100, 1000, 1100, 1200, 2200, 3200}, 900),
            (std::vector<std::tuple<int64_t, int64_t, bool>>{{0, 100, false},
                                                             {100, 900, true},
                                                             {1000, 200, false},
                                                             {1200, 1000, true},
                                                             {2200, 1000, true}}));
}

TEST(HybridRunsTest, OnlyShortOrOnlyLongDocuments) {
  EXPECT_EQ(Runs({0, 3, 10, 20}, 900),
            (std::vector<std::tuple<int64_t, int64_t, bool>>{{0, 20, false}}));
  EXPECT_EQ(Runs({0, 65536}, kLongDocumentTokens),
            (std::vector<std::tuple<int64_t, int64_t, bool>>{{0, 65536, true}}));
  EXPECT_EQ(Runs({0, 8191, 16382}, kLongDocumentTokens),
            (std::vector<std::tuple<int64_t, int64_t, bool>>{{0, 16382, false}}));
  EXPECT_EQ(Runs({0, 8192, 8193}, kLongDocumentTokens),
            (std::vector<std::tuple<int64_t, int64_t, bool>>{{0, 8192, true}, {8192, 1, false}}));
}

TEST(HybridRunsTest, NoTokensNoRuns) { EXPECT_TRUE(HybridRuns({0}).empty()); }

}  // namespace
}  // namespace prolong::attention
