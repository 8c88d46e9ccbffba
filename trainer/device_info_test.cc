#include "trainer/device_info.h"

#include <algorithm>
#include <cstdlib>

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

TEST(DeviceInfoTest, PeakBf16TflopsOfKnownGpus) {
  // Names as the CUDA driver reports them.
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA H100 80GB HBM3"), 989.4);
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA H100 PCIe"), 756);
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA H100 NVL"), 835);
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA H200"), 989.4);
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA A100-SXM4-80GB"), 312);
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA B200"), 2250);
  // Unknown: no MFU rather than a wrong one.
  EXPECT_EQ(PeakDenseBf16Tflops("NVIDIA GeForce RTX 4090"), 0);
  EXPECT_EQ(PeakDenseBf16Tflops(""), 0);
#ifndef PROLONG_CUDA
  EXPECT_EQ(CudaDeviceName(0), "");
#endif
}

TEST(DeviceInfoTest, ExpandableSegmentsUnlessTheAllocatorIsConfigured) {
  unsetenv("PYTORCH_CUDA_ALLOC_CONF");
  unsetenv("PYTORCH_ALLOC_CONF");
  EXPECT_TRUE(PreferExpandableCudaSegments());
  EXPECT_STREQ(std::getenv("PYTORCH_CUDA_ALLOC_CONF"), "expandable_segments:True");

  // An operator's own settings, under either name, are kept.
  setenv("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:False", 1);
  EXPECT_FALSE(PreferExpandableCudaSegments());
  EXPECT_STREQ(std::getenv("PYTORCH_CUDA_ALLOC_CONF"), "expandable_segments:False");
  unsetenv("PYTORCH_CUDA_ALLOC_CONF");
  setenv("PYTORCH_ALLOC_CONF", "max_split_size_mb:512", 1);
  EXPECT_FALSE(PreferExpandableCudaSegments());
  EXPECT_EQ(std::getenv("PYTORCH_CUDA_ALLOC_CONF"), nullptr);
  unsetenv("PYTORCH_ALLOC_CONF");
}

}  // namespace
}  // namespace prolong::trainer
