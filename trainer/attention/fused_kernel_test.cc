#include "trainer/attention/fused_kernel.h"

#include <string>

#include "gtest/gtest.h"

namespace prolong::attention {
namespace {

TEST(FusedKernelTest, EveryNameParsesBackToItsKernel) {
  const std::vector<std::string> names = FusedKernelNames();
  ASSERT_EQ(names.size(), 5u);
  for (const std::string& name : names) {
    const absl::StatusOr<FusedKernel> kernel = ParseFusedKernel(name);
    ASSERT_TRUE(kernel.ok()) << name;
    EXPECT_EQ(FusedKernelName(*kernel), name);
  }
  EXPECT_EQ(*ParseFusedKernel("per-document-cudnn"), FusedKernel::kPerDocumentCudnn);
  EXPECT_EQ(*ParseFusedKernel("hybrid"), FusedKernel::kHybrid);
  EXPECT_EQ(FusedKernelName(kDefaultFusedKernel), "hybrid");
}

TEST(FusedKernelTest, AnUnknownNameIsRefusedWithTheChoices) {
  const absl::StatusOr<FusedKernel> kernel = ParseFusedKernel("flash3");
  ASSERT_EQ(kernel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(kernel.status().message().find("\"flash3\""), std::string::npos);
  EXPECT_NE(kernel.status().message().find("varlen-flash"), std::string::npos);
}

}  // namespace
}  // namespace prolong::attention
