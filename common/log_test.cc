#include "common/log.h"

#include <string>

#include "gtest/gtest.h"

namespace prolong {
namespace {

TEST(LogTest, WritesOneFormattedLineToStderr) {
  testing::internal::CaptureStderr();
  PROLONG_LOG(WARNING) << "disk " << 93 << "% full";
  const std::string line = testing::internal::GetCapturedStderr();
  EXPECT_EQ(line[0], 'W');
  EXPECT_NE(line.find("log_test.cc:"), std::string::npos);
  EXPECT_NE(line.find("] disk 93% full\n"), std::string::npos);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
}

TEST(LogTest, DropsLinesBelowTheMinimumSeverity) {
  SetMinLogSeverity(LogSeverity::kError);
  testing::internal::CaptureStderr();
  PROLONG_LOG(INFO) << "quiet";
  PROLONG_LOG(ERROR) << "loud";
  const std::string out = testing::internal::GetCapturedStderr();
  SetMinLogSeverity(LogSeverity::kInfo);
  EXPECT_EQ(out.find("quiet"), std::string::npos);
  EXPECT_NE(out.find("loud"), std::string::npos);
}

TEST(LogDeathTest, FailedCheckAbortsWithTheCondition) {
  const int replicas = 3;
  EXPECT_DEATH(PROLONG_CHECK(replicas == 4) << "replicas=" << replicas,
               "Check failed: replicas == 4 replicas=3");
  PROLONG_CHECK(replicas == 3) << "never printed";
}

}  // namespace
}  // namespace prolong
