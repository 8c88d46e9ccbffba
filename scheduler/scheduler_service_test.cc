// The scheduler service in this process, over real gRPC, against a datamixer whose plans the
// test holds back.
#include "scheduler/scheduler_service.h"

#include <memory>
#include <string>

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

TEST(SchedulerServiceTest, DriversHoldAtMostEightPlanCallsAndTheOtherRunsWait) {
  const std::string dir = testing::MakeTempDir();
  auto registry = std::make_shared<prometheus::Registry>();
  HeldPlans datamixer;
  ServerOptions datamixer_options;
  datamixer_options.component = "datamixer";
  datamixer_options.metrics_address = "";
  absl::StatusOr<std::unique_ptr<Server>> datamixer_server =
      Server::Start(datamixer_options, {Hosted<v1::DataMixer>(&datamixer)}, registry);
  ASSERT_TRUE(datamixer_server.ok()) << datamixer_server.status();

  SchedulerServiceOptions options;
  options.state_dir = dir + "/scheduler";
  options.trainer_binary = "/bin/false";
  options.datamixer_address = (*datamixer_server)->address();
  options.evaluator_address = "127.0.0.1:1";
  absl::StatusOr<std::unique_ptr<SchedulerService>> scheduler =
      SchedulerService::Create(options, *registry);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  ServerOptions scheduler_options;
  scheduler_options.component = "scheduler";
  scheduler_options.metrics_address = "";
  absl::StatusOr<std::unique_ptr<Server>> scheduler_server =
      Server::Start(scheduler_options, {Hosted<v1::Scheduler>(scheduler->get())}, registry);
  ASSERT_TRUE(scheduler_server.ok()) << scheduler_server.status();
  (*scheduler)->Start((*scheduler_server)->address());

  auto stub = v1::Scheduler::NewStub(
      grpc::CreateChannel((*scheduler_server)->address(), grpc::InsecureChannelCredentials()));
  v1::SubmitRunRequest request;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kSpec, request.mutable_spec()));
  request.mutable_spec()->mutable_checkpoint()->set_directory(dir + "/checkpoints");
  constexpr int kRuns = 12;
  std::vector<std::string> run_ids;
  for (int k = 0; k < kRuns; ++k) {
    request.set_request_id(absl::StrCat("held-", k));
    grpc::ClientContext context;
    v1::Run run;
    const grpc::Status submitted = stub->SubmitRun(&context, request, &run);
    ASSERT_TRUE(submitted.ok()) << submitted.error_message();
    run_ids.push_back(run.run_id());
  }

  // Eight runs' plans are held; the other four are told why they wait, which also shows the
  // drivers' threads go on stepping runs while eight of them block.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int told = 0;
  while (absl::Now() < deadline) {
    told = 0;
    for (const std::string& run_id : run_ids) {
      v1::GetRunRequest get;
      get.set_run_id(run_id);
      grpc::ClientContext context;
      v1::Run run;
      ASSERT_TRUE(stub->GetRun(&context, get, &run).ok());
      if (run.message().find("plan calls to datamixers") != std::string::npos) ++told;
    }
    if (datamixer.held() == 8 && told == kRuns - 8) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(datamixer.held(), 8);
  EXPECT_EQ(told, kRuns - 8);
  absl::SleepFor(absl::Milliseconds(500));  // their retries find the slots still taken
  EXPECT_EQ(datamixer.most_held(), 8);

  datamixer.Release();
  (*scheduler_server)->Shutdown();
  scheduler->reset();
  (*datamixer_server)->Shutdown();
}

}  // namespace
}  // namespace prolong::scheduler
