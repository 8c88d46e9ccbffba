#include "trainer/device_info.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace prolong::trainer {
namespace {

TEST(DeviceInfoTest, ReportsTheLinkedLibTorch) {
  const DeviceInfo info = GetDeviceInfo();
  // The version the headers name must be a real dotted version, e.g. "1.13.0".
  ASSERT_FALSE(info.libtorch_version.empty());
  EXPECT_EQ(std::count(info.libtorch_version.begin(), info.libtorch_version.end(), '.'), 2)
      << info.libtorch_version;
#ifdef PROLONG_CUDA
  EXPECT_TRUE(info.built_with_cuda);
  EXPECT_FALSE(info.nccl_version.empty());
  EXPECT_NE(info.ToString().find("NCCL " + info.nccl_version), std::string::npos);
#else
  EXPECT_FALSE(info.built_with_cuda);
  EXPECT_EQ(info.cuda_devices, 0);
  EXPECT_EQ(info.ToString(), "LibTorch " + info.libtorch_version + ", CPU only");
#endif
}

}  // namespace
}  // namespace prolong::trainer
