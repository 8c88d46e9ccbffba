// A HELMET output file (helmet_output.h), ours or HELMET's, as `prolongctl eval` reads and
// rescores it: the first byte picks the file's name (which names the dataset when args.datasets
// does not), the rest is the file. Whatever the bytes, reading and rescoring either fail with
// INVALID_ARGUMENT (UNIMPLEMENTED for datasets HELMET scores elsewhere) naming the file, or
// give outputs that write (no exception, whatever the strings and numbers) and read back as
// written: the same dataset, examples and extra fields, the averages, and the metric columns
// with the match metrics as truth values. A rescored file has one value per example in every
// metric column, an average per column, and each example's "parsed_output".
#include "evaluator/metrics/helmet_output.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "evaluator/metrics/metric_values.h"
#include "fuzz/check.h"
#include "fuzz/scratch.h"

namespace {

using prolong::evaluator::metrics::HelmetOutput;
using prolong::evaluator::metrics::MetricColumns;

constexpr const char* kNames[] = {
    "output.json",
    "kilt_nq_eval_nq-dev_in131072_size3_shots2_sampFalsemax20min0t0.0p1.0_chatFalse_42.json",
    "kilt_popqa_3_eval_popqa_test_1000_k3_dep6_in8192_size2_shots2_sampFalsemax100min0t0.0p1.0_"
    "chatFalse_42.json",
    "msmarco_rerank_psg_eval_test_reranking_data_k4_dep3_in8192_size2_shots2_sampFalsemax200min0"
    "t0.0p1.0_chatFalse_42.json",
    "json_kv_eval_test_k2_dep6_in8192_size2_shots2_sampFalsemax100min0t0.0p1.0_chatFalse_42.json",
    "icl_banking77_5900shot_balance_eval__in131072_size500_shots5900_sampFalsemax20min0t0.0p1.0_"
    "chatFalse_42.json",
    "narrativeqa_130772_eval__in131072_size100_shots2_sampFalsemax100min0t0.0p1.0_chatTrue_42.json",
    "infbench_choice_eng_130862_eval__in131072_size100_shots2_sampFalsemax10min0t0.0p1.0_chatTrue_"
    "42.json",
    "multi_lexsum_130372_eval__in131072_size100_shots2_sampFalsemax400min0t0.0p1.0_chatTrue_42."
    "json",
    "ruler_niah_mk_2_eval_validation_131072_in131072_size100_shots2_sampFalsemax50min0t0.0p1.0_"
    "chatFalse_42.json",
    "alce_asqa_eval__in131072_size100_shots2_sampFalsemax300min0t0.0p1.0_chatFalse_42.json",
};

std::string Show(const prolong::evaluator::metrics::Json& value) {
  return value.dump(-1, ' ', true, prolong::evaluator::metrics::Json::error_handler_t::replace);
}

// The columns as written: match metrics are truth values in HELMET's files.
MetricColumns AsWritten(MetricColumns columns) {
  for (auto& [name, values] : columns) {
    if (name != "exact_match" && name != "substring_exact_match") continue;
    for (double& value : values) value = value != 0 ? 1 : 0;
  }
  return columns;
}

// Writes `output` and reads it back: what was written must come back.
void CheckWritesBack(const HelmetOutput& output, const std::string& path) {
  const absl::Status written = prolong::evaluator::metrics::WriteHelmetOutput(output, path);
  FUZZ_CHECK(written.ok(), written.ToString());
  const absl::StatusOr<HelmetOutput> reread = prolong::evaluator::metrics::ReadHelmetOutput(path);
  FUZZ_CHECK(reread.ok(), reread.status().ToString());
  FUZZ_CHECK(reread->dataset == output.dataset, reread->dataset);
  FUZZ_CHECK(reread->data == output.data, "the examples differ");
  FUZZ_CHECK(reread->extra == output.extra, Show(reread->extra));
  FUZZ_CHECK(reread->averaged_metrics == output.averaged_metrics, "the averages differ");
  FUZZ_CHECK(reread->metrics == AsWritten(output.metrics), "the metric columns differ");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string path =
      prolong::fuzz::WriteScratchFile(kNames[data[0] % std::size(kNames)], text);
  auto names_file = [&](const absl::Status& status) {
    return (status.code() == absl::StatusCode::kInvalidArgument ||
            status.code() == absl::StatusCode::kUnimplemented) &&
           absl::StartsWith(status.message(), path + ": ");
  };

  const absl::StatusOr<HelmetOutput> stored = prolong::evaluator::metrics::ReadHelmetOutput(path);
  if (!stored.ok()) {
    FUZZ_CHECK(names_file(stored.status()), stored.status().ToString());
    return 0;
  }
  FUZZ_CHECK(!stored->dataset.empty(), path);
  CheckWritesBack(*stored, prolong::fuzz::ScratchDir() + "/written.json");

  const auto rescored = prolong::evaluator::metrics::Rescore(path);
  if (!rescored.ok()) {
    FUZZ_CHECK(names_file(rescored.status()), rescored.status().ToString());
    return 0;
  }
  const HelmetOutput& output = rescored->output;
  FUZZ_CHECK(output.data.size() == stored->data.size(), path);
  for (const auto& [name, values] : output.metrics) {
    FUZZ_CHECK(values.size() == output.data.size(), name);
    FUZZ_CHECK(prolong::evaluator::metrics::FindMetric(output.averaged_metrics, name) != nullptr,
               name);
  }
  for (const auto& example : output.data) {
    FUZZ_CHECK(example.contains("parsed_output"), Show(example));
  }
  CheckWritesBack(output, prolong::fuzz::ScratchDir() + "/rescored.json");
  return 0;
}
