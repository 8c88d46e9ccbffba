// The standard process_* metrics of Prometheus client libraries (CPU seconds, memory, file
// descriptors, threads, start time), read from /proc at scrape time.
#ifndef PROLONG_COMMON_PROCESS_METRICS_H_
#define PROLONG_COMMON_PROCESS_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace prolong {

class ProcessMetrics : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace prolong

#endif  // PROLONG_COMMON_PROCESS_METRICS_H_
