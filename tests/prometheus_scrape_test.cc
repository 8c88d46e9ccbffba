// The scheduler's and a trainer worker's /metrics as an operator's Prometheus sees them: a real
// Prometheus 2.42 scraping, every second on loopback, a real scheduler while a run of a tiny
// Llama trains on two local workers, read back through Prometheus' HTTP API (/api/v1/query):
//   - the scheduler's target is up, and each of its per-run series exists for the run, as a
//     gauge, while it trains;
//   - prolong_scheduler_run_step{run} rises between two queries during training;
//   - prolong_scheduler_run_loss{run} is finite and one of the losses the run reported while it
//     trains, and once the run has ended it equals `prolongctl run get --json`'s latest loss;
//   - rank 0's own /metrics (its address from the "trainer listening" line of its log, handed
//     to Prometheus by file-based service discovery) is scraped: prolong_trainer_step rises;
//   - prolong_scheduler_runs{state="SUCCEEDED"} is 1, and {state="RUNNING"} 0, after the end.

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/prometheus_server.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"

namespace prolong {
namespace {

using testing::Eventually;
using testing::kPrometheusBinary;
using testing::Prometheus;
using testing::ServiceProcess;

// 150 steps of 64 sequences of 128 tokens: over 20 s of training on two idle cores, which
// outlasts several one-second scrapes and the discovery of rank 0's target with its first
// scrapes (about 5 s, whatever the load) with room to spare.
constexpr int64_t kSteps = 150;

// Waits on polls and processes that a loaded machine slows down.
constexpr absl::Duration kPatience = absl::Seconds(60);

std::string Spec(const std::string& checkpoint_dir) {
  return absl::StrCat(R"(name: scraped
seed: 3
deterministic: true
)",
                      testing::kTinyModelYaml, R"(stages:
  - name: short
    seq_len: 128
    batch_tokens: 8192
    total_tokens: )",
                      kSteps * 8192, R"(
    allow_repetition: true
    schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1}
    mixture:
      - {domain: books, proportion: 0.5, packing: long}
      - {domain: web, proportion: 0.5, packing: short}
resources: {data_parallel: 2}
checkpoint: {directory: )",
                      checkpoint_dir, R"(}
fault: {max_restarts: 0, heartbeat_timeout: 60s, rendezvous_timeout: 60s}
)");
}

// Removes the test's directory once everything started in it is gone (declare it first).
struct TempDir {
  TempDir() : path(testing::MakeTempDir()) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  const std::string path;
};

std::string WriteFile(const std::string& path, const std::string& text) {
  // Renamed into place: Prometheus' file discovery never reads half a file.
  const std::string partial = path + ".partial";
  std::ofstream(partial) << text;
  std::filesystem::rename(partial, path);
  return path;
}

std::string Absolute(const std::string& path) { return std::filesystem::absolute(path).string(); }

testing::RunResult Ctl(const ServiceProcess& scheduler, std::vector<std::string> args,
                       absl::Duration timeout = kPatience) {
  args.insert(args.begin(),
              {testing::kProlongctlBinary, "run", "--scheduler=" + scheduler.address});
  absl::StatusOr<testing::RunResult> result = testing::Run(args, timeout);
  EXPECT_OK(result);
  return result.ok() ? *result : testing::RunResult();
}

// `prolongctl run get --json`: the whole Run.
nlohmann::json GetRun(const ServiceProcess& scheduler, const std::string& run_id) {
  const testing::RunResult result = Ctl(scheduler, {"get", run_id, "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  nlohmann::json run = nlohmann::json::parse(result.stdout_text, nullptr, false);
  EXPECT_FALSE(run.is_discarded()) << result.stdout_text;
  return run.is_discarded() ? nlohmann::json::object() : run;
}

bool Near(double a, double b) { return std::abs(a - b) <= 1e-12 * std::max(1.0, std::abs(b)); }

TEST(PrometheusScrapeTest, PrometheusReadsARunsTrainingFromTheSchedulerAndItsWorker) {
  if (access(kPrometheusBinary, X_OK) != 0) {
    GTEST_SKIP() << kPrometheusBinary << " is not installed (Debian's prometheus package): "
                 << "this test needs a real Prometheus to scrape the services";
  }
  const TempDir dir;
  ASSERT_OK(testing::WriteLearnableCorpus(dir.path + "/store"));
  absl::StatusOr<ServiceProcess> datamixer =
      testing::StartService({testing::kDatamixerBinary, "--store=" + dir.path + "/store",
                             "--address=127.0.0.1:0", "--metrics-address=off"},
                            kPatience);
  ASSERT_OK(datamixer);
  absl::StatusOr<ServiceProcess> started = testing::StartService(
      {testing::kSchedulerBinary, "--state-dir=" + dir.path + "/scheduler", "--address=127.0.0.1:0",
       "--metrics-address=127.0.0.1:0", "--trainer-binary=" + Absolute(testing::kTrainerBinary),
       "--datamixer=" + datamixer->address, "--heartbeat-interval-ms=500"},
      kPatience);
  ASSERT_OK(started);
  const ServiceProcess& scheduler = *started;
  ASSERT_FALSE(scheduler.metrics_address.empty());

  // The scheduler by a static target; workers, whose ports are known only once they run, by a
  // file of targets, as a launcher would write it.
  const std::string trainers = WriteFile(dir.path + "/trainers.json", "[]");
  const std::string config =
      WriteFile(dir.path + "/prometheus.yml",
                testing::PrometheusConfig({{"prolong-scheduler", scheduler.metrics_address}},
                                          {{"prolong-trainer", trainers}}));
  absl::StatusOr<Prometheus> prometheus = testing::StartPrometheus(config, dir.path, kPatience);
  ASSERT_OK(prometheus);
  ASSERT_TRUE(Eventually(
      kPatience,
      [&] { return prometheus->Value(R"(up{job="prolong-scheduler"})").value_or(0) == 1; }))
      << "Prometheus never scraped the scheduler at " << scheduler.metrics_address << ": "
      << prometheus->process->Stderr();

  std::ofstream(dir.path + "/run.yaml") << Spec(dir.path + "/checkpoints");
  const testing::RunResult submitted = Ctl(scheduler, {"submit", dir.path + "/run.yaml"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string run_id(absl::StripAsciiWhitespace(submitted.stdout_text));
  const std::string run = absl::StrCat("{run=\"", run_id, "\"}");

  // Rank 0's /metrics address, from the line it prints when it listens.
  std::string worker_metrics;
  ASSERT_TRUE(
      Eventually(kPatience,
                 [&] {
                   const testing::RunResult logs = Ctl(scheduler, {"logs", run_id, "--rank=0"});
                   std::smatch match;
                   static const std::regex kListening(R"(trainer listening: .*metrics=(\S+))");
                   if (!std::regex_search(logs.stdout_text, match, kListening)) return false;
                   worker_metrics = match[1].str();
                   return true;
                 }))
      << "rank 0 never said where it serves /metrics: " << scheduler.process->Stderr();
  WriteFile(trainers,
            absl::StrCat(R"([{"targets": [")", worker_metrics, R"("], "labels": {"rank": "0"}}])"));

  // Training: the step rises between two queries, and the loss is a reported one.
  const std::string step_query = "prolong_scheduler_run_step" + run;
  double first_step = -1;
  ASSERT_TRUE(Eventually(kPatience,
                         [&] {
                           first_step = prometheus->Value(step_query).value_or(-1);
                           return first_step >= 1;
                         }))
      << "no step of " << run_id << " reached Prometheus";
  ASSERT_LT(first_step, kSteps) << "the run ended before Prometheus saw it train; make it longer";
  absl::StatusOr<double> training_loss;
  ASSERT_TRUE(Eventually(kPatience, [&] {
    training_loss = prometheus->Value("prolong_scheduler_run_loss" + run);
    return training_loss.ok();
  })) << training_loss.status();
  EXPECT_TRUE(std::isfinite(*training_loss)) << *training_loss;
  EXPECT_TRUE(Eventually(kPatience,
                         [&] { return prometheus->Value(step_query).value_or(-1) > first_step; }))
      << "prolong_scheduler_run_step stayed at " << first_step;

  // Every per-run series of the scheduler, for each of the gang's ranks where it is per rank.
  for (const char* name :
       {"prolong_scheduler_run_restarts", "prolong_scheduler_run_stage",
        "prolong_scheduler_run_stage_steps", "prolong_scheduler_run_tokens_per_second"}) {
    EXPECT_OK(prometheus->Value(name + run));
  }
  // A CPU has no known peak, so no MFU is reported rather than a 0 that reads as measured.
  absl::StatusOr<std::vector<Prometheus::Sample>> mfu =
      prometheus->Samples("prolong_scheduler_run_mfu" + run);
  ASSERT_OK(mfu);
  EXPECT_TRUE(mfu->empty());
  EXPECT_EQ(prometheus->Value("prolong_scheduler_run_stage_steps" + run).value_or(-1), kSteps);
  EXPECT_EQ(prometheus->Value("prolong_scheduler_run_restarts" + run).value_or(-1), 0);
  absl::StatusOr<std::vector<Prometheus::Sample>> ages =
      prometheus->Samples("prolong_scheduler_heartbeat_age_seconds" + run);
  ASSERT_OK(ages);
  std::set<std::string> ranks;
  for (const Prometheus::Sample& age : *ages) {
    ranks.insert(age.labels.value("rank", ""));
    EXPECT_GE(age.value, 0);
    EXPECT_LT(age.value, 60) << "rank " << age.labels.value("rank", "");
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1"}));
  for (const char* name :
       {"prolong_scheduler_runs", "prolong_scheduler_run_step", "prolong_scheduler_run_loss",
        "prolong_scheduler_run_tokens_per_second", "prolong_scheduler_run_restarts",
        "prolong_scheduler_heartbeat_age_seconds"}) {
    EXPECT_EQ(prometheus->Type(name), "gauge") << name;
  }

  // Rank 0's own series, scraped while it trains: its step rises from one scrape to another.
  const std::string worker_step_query = R"(prolong_trainer_step{job="prolong-trainer",rank="0"})";
  double worker_step = -1;
  EXPECT_TRUE(Eventually(kPatience,
                         [&] {
                           worker_step = prometheus->Value(worker_step_query).value_or(-1);
                           return worker_step >= 1;
                         }))
      << "Prometheus never scraped rank 0 at " << worker_metrics << ": "
      << prometheus->process->Stderr();
  EXPECT_LT(worker_step, kSteps) << "rank 0 ended before Prometheus saw it train; make it longer";
  EXPECT_TRUE(Eventually(
      kPatience,
      [&] {
        return prometheus->Value(worker_step_query).value_or(-1) > worker_step &&
               prometheus->Value(R"(up{job="prolong-trainer",rank="0"})").value_or(-1) == 1;
      }))
      << "prolong_trainer_step of rank 0 stayed at " << worker_step;
  EXPECT_EQ(prometheus->Type("prolong_trainer_tokens_total"), "counter");

  // The run's end.
  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(180));
  ASSERT_EQ(watched.exit_code, 0) << watched.stdout_text << watched.stderr_text
                                  << scheduler.process->Stderr();
  ASSERT_TRUE(absl::StrContains(watched.stdout_text, "SUCCEEDED")) << watched.stdout_text;
  EXPECT_TRUE(
      absl::StrContains(watched.stdout_text, absl::StrFormat(" short step %d loss ", kSteps)))
      << watched.stdout_text;
  EXPECT_TRUE(
      absl::StrContains(watched.stdout_text, absl::StrFormat(" loss %.4f lr ", *training_loss)))
      << "the loss Prometheus read during training, " << *training_loss
      << ", is none the run reported:\n"
      << watched.stdout_text;

  const nlohmann::json ended = GetRun(scheduler, run_id);
  ASSERT_TRUE(ended.contains("latest_metrics")) << ended.dump();
  const double final_loss = ended["latest_metrics"].value("loss", std::nan(""));
  ASSERT_TRUE(std::isfinite(final_loss)) << ended.dump();
  double scraped_loss = NAN;
  EXPECT_TRUE(Eventually(kPatience,
                         [&] {
                           absl::StatusOr<double> value =
                               prometheus->Value("prolong_scheduler_run_loss" + run);
                           if (value.ok()) scraped_loss = *value;
                           return value.ok() && Near(*value, final_loss);
                         }))
      << "Prometheus has loss " << absl::StrFormat("%.17g", scraped_loss) << ", the run "
      << absl::StrFormat("%.17g", final_loss);
  EXPECT_TRUE(Eventually(
      kPatience,
      [&] {
        return prometheus->Value(R"(prolong_scheduler_runs{state="SUCCEEDED"})").value_or(-1) ==
                   1 &&
               prometheus->Value(R"(prolong_scheduler_runs{state="RUNNING"})").value_or(-1) == 0 &&
               prometheus->Value(step_query).value_or(-1) == kSteps;
      }))
      << "after the run: SUCCEEDED "
      << prometheus->Value(R"(prolong_scheduler_runs{state="SUCCEEDED"})").value_or(-1)
      << ", RUNNING "
      << prometheus->Value(R"(prolong_scheduler_runs{state="RUNNING"})").value_or(-1) << ", step "
      << prometheus->Value(step_query).value_or(-1);
  // The gang is gone: its ranks' heartbeat ages leave rather than freeze at a healthy value.
  EXPECT_TRUE(Eventually(kPatience, [&] {
    absl::StatusOr<std::vector<Prometheus::Sample>> left =
        prometheus->Samples("prolong_scheduler_heartbeat_age_seconds" + run);
    return left.ok() && left->empty();
  })) << "heartbeat ages of the ended run are still exported";
}

}  // namespace
}  // namespace prolong
