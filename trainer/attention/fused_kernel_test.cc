#include "trainer/attention/fused_kernel.h"

#include <string>

#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace prolong::attention {
namespace {

using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(FusedKernelTest, EveryNameParsesBackToItsKernel) {
  const std::vector<std::string> names = FusedKernelNames();
  ASSERT_EQ(names.size(), 5u);
  for (const std::string& name : names) {
    const absl::StatusOr<FusedKernel> kernel = ParseFusedKernel(name);
    ASSERT_OK(kernel) << name;
    EXPECT_EQ(FusedKernelName(*kernel), name);
  }
  EXPECT_EQ(*ParseFusedKernel("per-document-cudnn"), FusedKernel::kPerDocumentCudnn);
  EXPECT_EQ(*ParseFusedKernel("hybrid"), FusedKernel::kHybrid);
  EXPECT_EQ(FusedKernelName(kDefaultFusedKernel), "hybrid");
}

TEST(FusedKernelTest, AnUnknownNameIsRefusedWithTheChoices) {
  const absl::StatusOr<FusedKernel> kernel = ParseFusedKernel("flash3");
  EXPECT_THAT(kernel, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("\"flash3\""), HasSubstr("varlen-flash"))));
}

}  // namespace
}  // namespace prolong::attention
