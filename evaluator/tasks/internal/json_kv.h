// JSON KV, generated from a seed as HELMET's data/json_kv/test_k{N}_dep6.jsonl were built: N
// pairs of random UUID keys and values in one JSON object laid out as lost-in-the-middle lays it
// out (kv_retrieval.prompt and make_kv_retrieval_data.py), the queried pair placed at one of 6
// evenly spaced depths, example after example.
#ifndef PROLONG_EVALUATOR_TASKS_INTERNAL_JSON_KV_H_
#define PROLONG_EVALUATOR_TASKS_INTERNAL_JSON_KV_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "evaluator/tasks/internal/py_random.h"
#include "evaluator/tasks/task_data.h"

namespace prolong::evaluator::tasks::internal {

struct JsonKvOptions {
  int num_pairs = 0;    // HELMET: 105, 220, 440, 900, 1800 for 8K..128K.
  int num_samples = 0;  // HELMET: 100.
  int num_depths = 6;   // "dep6".
  int shots = 2;        // Demo pairs before the query.
  uint64_t seed = 42;
};

// Records as HELMET's load_json_kv leaves them: "context" ("JSON data:\n{...}"), "question" (the
// key in double quotes, as lost-in-the-middle's prompt quotes it), "answer" (the value, the
// string SubEM looks for), "demos" (formatted, HELMET's demo_template), "num_kvs" and "k"; and
// "gold_index" (the pair's position) and "depth" (gold_index / (num_pairs - 1)).
// Example i sits at depth i % num_depths. INVALID_ARGUMENT for fewer than shots + 2 pairs.
absl::StatusOr<std::vector<Record>> GenerateJsonKv(const JsonKvOptions& options);

// str(uuid.UUID(int=random.getrandbits(128), version=4)), as RULER makes its UUIDs.
std::string RandomUuid4(PyRandom& random);

}  // namespace prolong::evaluator::tasks::internal

#endif  // PROLONG_EVALUATOR_TASKS_INTERNAL_JSON_KV_H_
