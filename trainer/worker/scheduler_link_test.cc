#include "trainer/worker/scheduler_link.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/status_matchers.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace prolong::worker {
namespace {

// A scheduler that assigns, and records what workers report, in the order it arrives.
class RecordingScheduler : public v1::Scheduler::Service {
 public:
  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
                              v1::WorkerAssignment* assignment) override {
    assignment->set_worker_id(absl::StrCat(request->run_id(), "/1/0"));
    assignment->set_heartbeat_interval_ms(1000);
    return grpc::Status::OK;
  }
  grpc::Status ReportMetrics(grpc::ServerContext*, const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse*) override {
    absl::MutexLock lock(&mu_);
    ++metrics_calls_;
    for (const v1::StepMetrics& metrics : request->metrics()) {
      arrived_.push_back(absl::StrCat("step ", metrics.step()));
    }
    return grpc::Status::OK;
  }
  grpc::Status ReportCheckpoint(grpc::ServerContext*, const v1::ReportCheckpointRequest* request,
                                v1::ReportCheckpointResponse*) override {
    absl::MutexLock lock(&mu_);
    arrived_.push_back(absl::StrCat("checkpoint ", request->checkpoint().step()));
    return grpc::Status::OK;
  }

  std::vector<std::string> arrived() {
    absl::MutexLock lock(&mu_);
    return arrived_;
  }
  int metrics_calls() {
    absl::MutexLock lock(&mu_);
    return metrics_calls_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> arrived_ ABSL_GUARDED_BY(mu_);
  int metrics_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class SchedulerLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&scheduler_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.scheduler_address = absl::StrCat("127.0.0.1:", port);
    options_.run_id = "run";
    options_.attempt = 1;
  }
  void TearDown() override { server_->Shutdown(); }

  static v1::StepMetrics Step(int64_t step) {
    v1::StepMetrics metrics;
    metrics.set_step(step);
    return metrics;
  }

  RecordingScheduler scheduler_;
  std::unique_ptr<grpc::Server> server_;
  SchedulerLinkOptions options_;
};

std::vector<std::string> Steps(int64_t first, int64_t last) {
  std::vector<std::string> steps;
  for (int64_t step = first; step <= last; ++step) steps.push_back(absl::StrCat("step ", step));
  return steps;
}

TEST_F(SchedulerLinkTest, StepsArriveInOrderAFewCallsASecondAndBeforeTheCheckpointAfterThem) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SchedulerLink> link, SchedulerLink::Register(options_));
  const absl::Time start = absl::Now();
  for (int64_t step = 1; step <= 20; ++step) {
    link->ReportMetrics(Step(step));  // returns at once
    absl::SleepFor(absl::Milliseconds(50));
  }
  // 20 steps over a second went in a few calls, not 20; the checkpoint after step 20 waits for
  // every one of them.
  link->ReportCheckpoint([] {
    v1::Checkpoint checkpoint;
    checkpoint.set_step(20);
    return checkpoint;
  }());
  const absl::Duration elapsed = absl::Now() - start;
  std::vector<std::string> expected = Steps(1, 20);
  expected.push_back("checkpoint 20");
  EXPECT_EQ(scheduler_.arrived(), expected);
  EXPECT_LE(scheduler_.metrics_calls(), 2 + static_cast<int>(absl::ToInt64Seconds(elapsed)));
}

TEST_F(SchedulerLinkTest, TheFirstStepGoesAtOnceAndTheLastOnesWithTheLink) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SchedulerLink> link, SchedulerLink::Register(options_));
  link->ReportMetrics(Step(1));
  const absl::Time deadline = absl::Now() + absl::Milliseconds(800);
  while (scheduler_.arrived().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(scheduler_.arrived(), Steps(1, 1)) << "the first step waited for the interval";
  // Steps queued within the interval are sent before the link goes.
  for (int64_t step = 2; step <= 5; ++step) link->ReportMetrics(Step(step));
  link.reset();
  EXPECT_EQ(scheduler_.arrived(), Steps(1, 5));
}

TEST_F(SchedulerLinkTest, AnUnreachableSchedulerDoesNotHoldUpTraining) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SchedulerLink> link, SchedulerLink::Register(options_));
  server_->Shutdown();
  const absl::Time start = absl::Now();
  for (int64_t step = 1; step <= 10000; ++step) link->ReportMetrics(Step(step));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << "reporting waited for the scheduler";
  // The link tries once more to send what it keeps (the newest 4,096 steps), then gives up.
  link.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  EXPECT_TRUE(scheduler_.arrived().empty());
}

}  // namespace
}  // namespace prolong::worker
