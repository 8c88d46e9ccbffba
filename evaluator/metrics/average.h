// HELMET's arithmetic on scores, to the last bit: Python's round(x, n), NumPy's mean (pairwise
// summation) and eval.py's averaging of per-example metrics. Pure functions, thread-safe.
#ifndef PROLONG_EVALUATOR_METRICS_AVERAGE_H_
#define PROLONG_EVALUATOR_METRICS_AVERAGE_H_

#include <vector>

#include "evaluator/metrics/metric_values.h"

namespace prolong::evaluator::metrics {

// Python's round(x, digits) for a float: the double nearest to x correctly rounded to
// `digits` decimals, halves to even on the exact binary value.
double PythonRound(double x, int digits);

// numpy.mean over float64 values: NumPy's pairwise summation (blocks of 128, eight
// accumulators) divided by the count. NaN for no values, as NumPy gives.
double NumpyMean(const std::vector<double>& values);

// eval.py's averaged_metrics: the mean of each column times 100, except columns whose name
// contains "_len" (input_len, output_len), which stay as they are. num_preds is multiplied by
// 100 too, as HELMET does.
MetricValues AverageMetrics(const MetricColumns& columns);

}  // namespace prolong::evaluator::metrics

#endif  // PROLONG_EVALUATOR_METRICS_AVERAGE_H_
