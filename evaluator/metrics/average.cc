#include "evaluator/metrics/average.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/match.h"

namespace prolong::evaluator::metrics {
namespace {

// NumPy's pairwise_sum for float64 (numpy/_core/src/umath/loops_utils.h.src): sequential
// below 8 values, eight interleaved accumulators up to 128, halves (a multiple of 8 first)
// above.
double PairwiseSum(const double* a, size_t n) {
  if (n < 8) {
    double sum = 0.;
    for (size_t i = 0; i < n; ++i) sum += a[i];
    return sum;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    }
    double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) sum += a[i];
    return sum;
  }
  size_t half = n / 2;
  half -= half % 8;
  return PairwiseSum(a, half) + PairwiseSum(a + half, n - half);
}

}  // namespace

double PythonRound(double x, int digits) {
  if (!std::isfinite(x)) return x;
  // printf rounds the exact binary value correctly (ties to even), as Python's dtoa does;
  // reading the decimal back gives the double Python returns.
  char buffer[400];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, x);
  return std::strtod(buffer, nullptr);
}

double NumpyMean(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  // add.reduce starts from the identity 0.0.
  return (0.0 + PairwiseSum(values.data(), values.size())) / values.size();
}

MetricValues AverageMetrics(const MetricColumns& columns) {
  MetricValues averaged;
  averaged.reserve(columns.size());
  for (const auto& [name, values] : columns) {
    const double mean = NumpyMean(values);
    averaged.emplace_back(name, absl::StrContains(name, "_len") ? mean : mean * 100);
  }
  return averaged;
}

}  // namespace prolong::evaluator::metrics
