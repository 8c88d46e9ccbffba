#include "common/process_metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace prolong {
namespace {

std::map<std::string, double> Scrape() {
  std::map<std::string, double> values;
  for (const prometheus::MetricFamily& family : ProcessMetrics().Collect()) {
    EXPECT_EQ(family.metric.size(), 1u) << family.name;
    const prometheus::ClientMetric& m = family.metric.at(0);
    values[family.name] =
        family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return values;
}

TEST(ProcessMetricsTest, ReportsPlausibleValues) {
  std::map<std::string, double> values = Scrape();
  EXPECT_GT(values.at("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(values.at("process_virtual_memory_bytes"), values.at("process_resident_memory_bytes"));
  EXPECT_GE(values.at("process_threads"), 1);
  EXPECT_GT(values.at("process_max_fds"), 0);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(values.at("process_start_time_seconds"), now + 1);
  EXPECT_GT(values.at("process_start_time_seconds"), now - 3600);
  EXPECT_GE(values.at("process_cpu_seconds_total"), 0);
}

TEST(ProcessMetricsTest, CountsOpenFileDescriptorsAndCpuTime) {
  const double fds_before = Scrape().at("process_open_fds");
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Scrape().at("process_open_fds"), fds_before + 1);
  close(fd);

  const double cpu_before = Scrape().at("process_cpu_seconds_total");
  volatile double sink = 0;
  const std::clock_t start = std::clock();
  while (std::clock() - start < CLOCKS_PER_SEC / 5) sink = sink + 1;  // ~0.2 s of CPU.
  EXPECT_GE(Scrape().at("process_cpu_seconds_total"), cpu_before + 0.1);
}

}  // namespace
}  // namespace prolong
