// The scheduler service in this process, over real gRPC, against datamixers the test makes
// (one that holds plans back, one that answers UNAVAILABLE).
#include "scheduler/scheduler_service.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/server.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "tests/subprocess.h"

namespace prolong::scheduler {
namespace {

// Answers PlanStage only once released (then with an error, so each run ends), counting the
// calls it holds.
class HeldPlans final : public v1::DataMixer::Service {
 public:
  grpc::Status PlanStage(grpc::ServerContext*, const v1::PlanStageRequest*,
                         v1::StagePlan*) override {
    {
      absl::MutexLock lock(&mu_);
      most_held_ = std::max(most_held_, ++held_);
    }
    release_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    --held_;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "the test is over");
  }
  int held() {
    absl::MutexLock lock(&mu_);
    return held_;
  }
  int most_held() {
    absl::MutexLock lock(&mu_);
    return most_held_;
  }
  void Release() { release_.Notify(); }

 private:
  absl::Mutex mu_;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  int most_held_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Notification release_;
};

constexpr char kSpec[] = R"pb(
  name: "held"
  model {
    config {
      vocab_size: 260
      hidden_size: 32
      intermediate_size: 64
      num_hidden_layers: 2
      num_attention_heads: 4
      num_key_value_heads: 2
      max_position_embeddings: 2048
      bos_token_id: 1
      eos_token_ids: 2
    }
    precision: PRECISION_FP32
  }
  stages {
    name: "main"
    seq_len: 256
    batch_tokens: 512
    total_tokens: 5120
    schedule { peak_lr: 0.003 }
    mixture { domain: "books" proportion: 1 packing: PACKING_LONG }
  }
  resources { data_parallel: 1 }
)pb";

// The scheduler service over real gRPC in this process, planning with `datamixer`.
class InProcessScheduler {
 public:
  explicit InProcessScheduler(v1::DataMixer::Service* datamixer)
      : dir_(testing::MakeTempDir()), registry_(std::make_shared<prometheus::Registry>()) {
    ServerOptions datamixer_options;
    datamixer_options.component = "datamixer";
    datamixer_options.metrics_address = "";
    absl::StatusOr<std::unique_ptr<Server>> datamixer_server =
        Server::Start(datamixer_options, {Hosted<v1::DataMixer>(datamixer)}, registry_);
    EXPECT_TRUE(datamixer_server.ok()) << datamixer_server.status();
    datamixer_server_ = *std::move(datamixer_server);

    SchedulerServiceOptions options;
    options.state_dir = dir_ + "/scheduler";
    options.trainer_binary = "/bin/false";
    options.datamixer_address = datamixer_address();
    options.evaluator_address = "127.0.0.1:1";
    absl::StatusOr<std::unique_ptr<SchedulerService>> scheduler =
        SchedulerService::Create(options, *registry_);
    EXPECT_TRUE(scheduler.ok()) << scheduler.status();
    scheduler_ = *std::move(scheduler);
    ServerOptions scheduler_options;
    scheduler_options.component = "scheduler";
    scheduler_options.metrics_address = "";
    absl::StatusOr<std::unique_ptr<Server>> scheduler_server =
        Server::Start(scheduler_options, {Hosted<v1::Scheduler>(scheduler_.get())}, registry_);
    EXPECT_TRUE(scheduler_server.ok()) << scheduler_server.status();
    scheduler_server_ = *std::move(scheduler_server);
    scheduler_->Start(scheduler_server_->address());
    stub_ = v1::Scheduler::NewStub(
        grpc::CreateChannel(scheduler_server_->address(), grpc::InsecureChannelCredentials()));
  }
  ~InProcessScheduler() {
    scheduler_server_->Shutdown();
    scheduler_.reset();
    datamixer_server_->Shutdown();
  }

  std::string datamixer_address() const { return datamixer_server_->address(); }

  // The value of each series of the metric `name` whose label `label` is `value`.
  std::vector<double> Gauges(const std::string& name, const std::string& label,
                             const std::string& value) const {
    std::vector<double> values;
    for (const prometheus::MetricFamily& family : registry_->Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        for (const prometheus::ClientMetric::Label& pair : metric.label) {
          if (pair.name == label && pair.value == value) values.push_back(metric.gauge.value);
        }
      }
    }
    return values;
  }

  // Submits `count` runs of kSpec; their ids.
  std::vector<std::string> Submit(int count) {
    v1::SubmitRunRequest request;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(kSpec, request.mutable_spec()));
    request.mutable_spec()->mutable_checkpoint()->set_directory(dir_ + "/checkpoints");
    std::vector<std::string> run_ids;
    for (int k = 0; k < count; ++k) {
      request.set_request_id(absl::StrCat("run-", k));
      grpc::ClientContext context;
      v1::Run run;
      const grpc::Status submitted = stub_->SubmitRun(&context, request, &run);
      EXPECT_TRUE(submitted.ok()) << submitted.error_message();
      run_ids.push_back(run.run_id());
    }
    return run_ids;
  }

  // How many of the runs' messages contain `text`.
  int CountMessages(const std::vector<std::string>& run_ids, const std::string& text) {
    int count = 0;
    for (const std::string& run_id : run_ids) {
      v1::GetRunRequest get;
      get.set_run_id(run_id);
      grpc::ClientContext context;
      v1::Run run;
      EXPECT_TRUE(stub_->GetRun(&context, get, &run).ok());
      if (run.message().find(text) != std::string::npos) ++count;
    }
    return count;
  }

 private:
  const std::string dir_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Server> datamixer_server_;
  std::unique_ptr<SchedulerService> scheduler_;
  std::unique_ptr<Server> scheduler_server_;
  std::unique_ptr<v1::Scheduler::Stub> stub_;
};

TEST(SchedulerServiceTest, DriversHoldAtMostEightPlanCallsAndTheOtherRunsWait) {
  HeldPlans datamixer;
  InProcessScheduler scheduler(&datamixer);
  constexpr int kRuns = 12;
  const std::vector<std::string> run_ids = scheduler.Submit(kRuns);

  // Eight runs' plans are held; the other four are told why they wait, which also shows the
  // drivers' threads go on stepping runs while eight of them block.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int told = 0;
  while (absl::Now() < deadline) {
    told = scheduler.CountMessages(run_ids, "plan calls to datamixers");
    if (datamixer.held() == 8 && told == kRuns - 8) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(datamixer.held(), 8);
  EXPECT_EQ(told, kRuns - 8);
  absl::SleepFor(absl::Milliseconds(500));  // their retries find the slots still taken
  EXPECT_EQ(datamixer.most_held(), 8);

  datamixer.Release();
}

// Answers every PlanStage UNAVAILABLE (as a datamixer that is not there would be), counting
// the calls.
class UnavailablePlans final : public v1::DataMixer::Service {
 public:
  grpc::Status PlanStage(grpc::ServerContext*, const v1::PlanStageRequest*,
                         v1::StagePlan*) override {
    calls_.fetch_add(1);
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no store loaded");
  }
  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

TEST(SchedulerServiceTest, RunsPendingOnAMissingDatamixerAskItOnceEveryTwoSecondsBetweenThem) {
  UnavailablePlans datamixer;
  InProcessScheduler scheduler(&datamixer);
  constexpr int kRuns = 20;
  const std::vector<std::string> run_ids = scheduler.Submit(kRuns);

  // Every run says what the one call that was made got.
  const std::string reason = absl::StrCat("waiting: stages[0]: datamixer ",
                                          scheduler.datamixer_address(), ": no store loaded");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int told = 0;
  while (absl::Now() < deadline) {
    told = scheduler.CountMessages(run_ids, reason);
    if (told == kRuns) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(told, kRuns);
  // Steps that overlapped the first call may have made their own.
  const int first_calls = datamixer.calls();
  EXPECT_LE(first_calls, 4);
  // Each run retries every 2 s: 20 runs would call about 45 times in 4.5 s; between them they
  // call once per 2 s.
  absl::SleepFor(absl::Milliseconds(4500));
  EXPECT_LE(datamixer.calls() - first_calls, 4);
  EXPECT_GE(datamixer.calls() - first_calls, 1);
}

// Runs waiting for their first start are counted by state but get no series of their own (they
// would all be 0), so thousands of them cost /metrics nothing per run.
TEST(SchedulerServiceTest, RunsNeverStartedAreCountedButHaveNoSeriesOfTheirOwn) {
  UnavailablePlans datamixer;
  InProcessScheduler scheduler(&datamixer);
  const std::vector<std::string> run_ids = scheduler.Submit(3);
  // The metrics are refreshed every second.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline &&
         scheduler.Gauges("prolong_scheduler_runs", "state", "PENDING") != std::vector{3.0}) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(scheduler.Gauges("prolong_scheduler_runs", "state", "PENDING"), std::vector{3.0});
  for (const char* name : {"prolong_scheduler_run_step", "prolong_scheduler_run_stage",
                           "prolong_scheduler_run_stage_steps", "prolong_scheduler_run_restarts"}) {
    for (const std::string& run_id : run_ids) {
      EXPECT_TRUE(scheduler.Gauges(name, "run", run_id).empty()) << name << " " << run_id;
    }
  }
}

}  // namespace
}  // namespace prolong::scheduler
