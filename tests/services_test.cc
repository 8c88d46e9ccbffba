// Starts every service binary as a real process on port 0 and checks what each one promises
// from day one: gRPC health and reflection, its API answering, a /metrics page that promtool
// accepts, a clean exit 0 on SIGTERM within 5 s, and one clear line for an
// address in use or usage for an unknown flag.

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/http_get.h"
#include "common/log.h"
#include "common/status_matchers.h"
#include "datamixer/store/store.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prolong/v1/evaluator.grpc.pb.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using grpc::reflection::v1alpha::ServerReflection;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;
using testing::Subprocess;

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";
constexpr char kPromtool[] = "/usr/bin/promtool";

template <typename Stub, typename Request, typename Response>
grpc::Status CallUnary(std::shared_ptr<grpc::Channel> channel,
                       grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                    Response*)) {
  Stub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  Request request;
  Response response;
  return (stub.*method)(&context, request, &response);
}

struct ServiceCase {
  std::string component;
  std::string binary;
  // Full name of the API service it hosts; empty for the trainer worker.
  std::string service;
  std::string proto_file;
  std::vector<std::string> methods;
  // One unary call to its API, the method it calls and the code it answers.
  std::function<grpc::Status(std::shared_ptr<grpc::Channel>)> call;
  std::string called_method;
  grpc::StatusCode code = grpc::StatusCode::UNIMPLEMENTED;
  std::string code_name = "UNIMPLEMENTED";
  // Flags it needs besides the addresses, for each process started (a fresh store where a
  // process holds its store alone).
  std::function<std::vector<std::string>()> args = [] { return std::vector<std::string>(); };
};

// An empty store for the datamixer, served read-only so that several processes share it.
std::vector<std::string> DatamixerArgs() {
  static const std::string* const dir = [] {
    auto* path = new std::string(testing::MakeTempDir() + "/store");
    PROLONG_CHECK(store::Store::OpenForWriting(*path, {"test", 256}).ok());
    return path;
  }();
  return {"--store=" + *dir};
}

// A result store of its own: an evaluator holds its store alone.
std::vector<std::string> EvaluatorArgs() {
  return {"--store=" + testing::MakeTempDir() + "/results"};
}

// A state directory of its own: a scheduler holds its run store alone; any executable stands in
// for the trainer, which no run here launches.
std::vector<std::string> SchedulerArgs() {
  return {"--state-dir=" + testing::MakeTempDir() + "/scheduler",
          "--trainer-binary=services/trainer/trainer"};
}

// A stage and a model for a trainer worker, which waits in its rendezvous (nothing listens on
// port 1) while the test talks to it.
std::vector<std::string> TrainerArgs() {
  static const std::string* const dir = [] {
    auto* path = new std::string(testing::MakeTempDir());
    std::ofstream(*path + "/stage.yaml")
        << "name: s\nseq_len: 64\nbatch_tokens: 128\ntotal_tokens: 128\n"
           "schedule: {peak_lr: 0.001}\nmixture: [{domain: d, proportion: 1, packing: long}]\n";
    std::ofstream(*path + "/config.json")
        << R"({"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,)"
           R"( "num_hidden_layers": 1, "num_attention_heads": 2})";
    return path;
  }();
  return {"--rank=0",
          "--world=2",
          "--dp=2",
          "--rendezvous=127.0.0.1:1",
          "--stage=" + *dir + "/stage.yaml",
          "--model-config=" + *dir + "/config.json",
          "--checkpoint-dir=" + *dir + "/checkpoints"};
}

std::vector<ServiceCase> AllServices() {
  return {
      {"scheduler",
       "services/scheduler/scheduler",
       "prolong.v1.Scheduler",
       "prolong/v1/scheduler.proto",
       {"SubmitRun", "GetRun", "ListRuns", "CancelRun", "WatchRun", "StreamLogs", "RegisterWorker",
        "Heartbeat", "ReportMetrics", "ReportCheckpoint"},
       [](auto channel) { return CallUnary(channel, &v1::Scheduler::Stub::GetRun); },
       "GetRun",
       grpc::StatusCode::NOT_FOUND,
       "NOT_FOUND",
       SchedulerArgs},
      {"datamixer",
       "services/datamixer/datamixer",
       "prolong.v1.DataMixer",
       "prolong/v1/datamixer.proto",
       {"Ingest", "ListDomains", "GetStats", "PlanStage", "StreamBatches"},
       [](auto channel) { return CallUnary(channel, &v1::DataMixer::Stub::ListDomains); },
       "ListDomains",
       grpc::StatusCode::OK,
       "OK",
       DatamixerArgs},
      {"evaluator",
       "services/evaluator/evaluator",
       "prolong.v1.Evaluator",
       "prolong/v1/evaluator.proto",
       {"Evaluate", "GetEvaluation", "ListEvaluations", "WatchEvaluation"},
       [](auto channel) { return CallUnary(channel, &v1::Evaluator::Stub::GetEvaluation); },
       "GetEvaluation",
       grpc::StatusCode::NOT_FOUND,
       "NOT_FOUND",
       EvaluatorArgs},
      {"trainer",
       "services/trainer/trainer",
       "",
       "",
       {},
       nullptr,
       "",
       grpc::StatusCode::UNIMPLEMENTED,
       "UNIMPLEMENTED",
       TrainerArgs},
  };
}

struct RunningService {
  std::unique_ptr<Subprocess> process;
  std::string grpc_address;
  std::string metrics_address;
};

// Starts the binary on port 0 and reads the addresses from its ready line.
RunningService StartService(const ServiceCase& service) {
  std::vector<std::string> argv = {service.binary, "--address=127.0.0.1:0",
                                   "--metrics-address=127.0.0.1:0"};
  const std::vector<std::string> args = service.args();
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(argv);
  EXPECT_OK(process);
  if (!process.ok()) return {};
  RunningService running{*std::move(process), "", ""};
  absl::StatusOr<std::string> line = running.process->ReadStdoutLine(absl::Seconds(30));
  EXPECT_OK(line);
  if (!line.ok()) return running;
  // "<component> listening: grpc=HOST:PORT metrics=HOST:PORT"
  EXPECT_TRUE(absl::StartsWith(*line, service.component + " listening: ")) << *line;
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "grpc=")) running.grpc_address = std::string(field);
    if (absl::ConsumePrefix(&field, "metrics=")) running.metrics_address = std::string(field);
  }
  EXPECT_FALSE(running.grpc_address.empty()) << *line;
  EXPECT_FALSE(running.metrics_address.empty()) << *line;
  return running;
}

std::shared_ptr<grpc::Channel> Connect(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

HealthCheckResponse::ServingStatus Health(const std::string& address, const std::string& name) {
  auto stub = Health::NewStub(Connect(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(name);
  HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << name << ": " << status.error_message();
  return response.status();
}

// Asks the reflection service one question.
ServerReflectionResponse Reflect(const std::string& address, ServerReflectionRequest request) {
  auto stub = ServerReflection::NewStub(Connect(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionResponse response;
  EXPECT_TRUE(stream->Write(request));
  EXPECT_TRUE(stream->Read(&response));
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  return response;
}

class ServiceProcessTest : public ::testing::TestWithParam<ServiceCase> {};

TEST_P(ServiceProcessTest, ServesHealthAndItsApi) {
  const ServiceCase& service = GetParam();
  RunningService running = StartService(service);
  ASSERT_FALSE(running.grpc_address.empty());
  EXPECT_EQ(Health(running.grpc_address, ""), HealthCheckResponse::SERVING);
  if (service.service.empty()) return;
  EXPECT_EQ(Health(running.grpc_address, service.service), HealthCheckResponse::SERVING);
  EXPECT_EQ(service.call(Connect(running.grpc_address)).error_code(), service.code);
}

TEST_P(ServiceProcessTest, ServesReflectionOfItsApi) {
  const ServiceCase& service = GetParam();
  RunningService running = StartService(service);
  ASSERT_FALSE(running.grpc_address.empty());

  ServerReflectionRequest list;
  list.set_list_services("");
  std::vector<std::string> names;
  const ServerReflectionResponse listed = Reflect(running.grpc_address, list);
  for (const auto& entry : listed.list_services_response().service()) names.push_back(entry.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.reflection.v1alpha.ServerReflection"),
            names.end());
  if (service.service.empty()) return;
  EXPECT_NE(std::find(names.begin(), names.end(), service.service), names.end())
      << absl::StrJoin(names, ", ");

  ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol(service.service);
  ServerReflectionResponse response = Reflect(running.grpc_address, symbol);
  bool found = false;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    if (file.name() != service.proto_file) continue;
    found = true;
    ASSERT_EQ(file.service_size(), 1);
    std::vector<std::string> methods;
    for (const auto& method : file.service(0).method()) methods.push_back(method.name());
    EXPECT_EQ(methods, service.methods);
  }
  EXPECT_TRUE(found) << "no " << service.proto_file << " in the reflection answer";
}

TEST_P(ServiceProcessTest, MetricsPassPromtool) {
  const ServiceCase& service = GetParam();
  RunningService running = StartService(service);
  ASSERT_FALSE(running.grpc_address.empty());
  Health(running.grpc_address, "");  // So that RPC metrics have samples.
  if (service.call) service.call(Connect(running.grpc_address));

  absl::StatusOr<std::string> metrics = HttpGet(running.metrics_address, "/metrics");
  ASSERT_OK(metrics);
  EXPECT_TRUE(absl::StrContains(
      *metrics, absl::StrCat("prolong_build_info{component=\"", service.component, "\"")));
  EXPECT_TRUE(absl::StrContains(*metrics, "process_cpu_seconds_total "));
  EXPECT_TRUE(
      absl::StrContains(*metrics,
                        "prolong_rpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Check\","
                        "grpc_service=\"grpc.health.v1.Health\"} 1"))
      << *metrics;
  EXPECT_TRUE(absl::StrContains(*metrics, "prolong_rpc_server_handling_seconds_bucket{"));
  if (service.call) {
    EXPECT_TRUE(absl::StrContains(
        *metrics,
        absl::StrCat("grpc_code=\"", service.code_name, "\",grpc_method=\"", service.called_method,
                     "\",grpc_service=\"", service.service, "\"} 1")))
        << *metrics;
  }

  const std::string path = testing::MakeTempDir() + "/metrics.txt";
  std::ofstream(path) << *metrics;
  absl::StatusOr<testing::RunResult> check =
      testing::Run({kPromtool, "check", "metrics"}, absl::Seconds(30), path);
  ASSERT_OK(check);
  EXPECT_EQ(check->exit_code, 0) << check->stdout_text << check->stderr_text;
  EXPECT_EQ(check->stdout_text + check->stderr_text, "") << "promtool found problems";
}

TEST_P(ServiceProcessTest, SigtermExitsZeroWithinFiveSeconds) {
  const ServiceCase& service = GetParam();
  RunningService running = StartService(service);
  ASSERT_FALSE(running.grpc_address.empty());
  ASSERT_EQ(Health(running.grpc_address, ""), HealthCheckResponse::SERVING);

  const absl::Time start = absl::Now();
  running.process->Signal(SIGTERM);
  absl::StatusOr<int> exit_code = running.process->Wait(absl::Seconds(5));
  ASSERT_OK(exit_code);
  EXPECT_EQ(*exit_code, 0) << running.process->Stderr();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(absl::StrContains(running.process->Stderr(), service.component + " stopped"));
}

TEST_P(ServiceProcessTest, AddressInUseGivesOneClearLine) {
  const ServiceCase& service = GetParam();
  RunningService first = StartService(service);
  ASSERT_FALSE(first.grpc_address.empty());

  auto with_args = [&](std::vector<std::string> argv) {
    const std::vector<std::string> args = service.args();
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  absl::StatusOr<testing::RunResult> second =
      testing::Run(with_args({service.binary, "--address=" + first.grpc_address,
                              "--metrics-address=127.0.0.1:0"}),
                   absl::Seconds(30));
  ASSERT_OK(second);
  EXPECT_NE(second->exit_code, 0);
  // Log lines (I...) may come first; the failure itself is one line, and no error lines.
  const std::string expected =
      absl::StrCat(service.component, ": ", first.grpc_address, ": address already in use\n");
  EXPECT_TRUE(absl::EndsWith(second->stderr_text, expected)) << second->stderr_text;
  for (absl::string_view line : absl::StrSplit(second->stderr_text, '\n', absl::SkipEmpty())) {
    EXPECT_FALSE(absl::StartsWith(line, "E")) << line;
  }

  // The same for the metrics address.
  second = testing::Run(with_args({service.binary, "--address=127.0.0.1:0",
                                   "--metrics-address=" + first.metrics_address}),
                        absl::Seconds(30));
  ASSERT_OK(second);
  EXPECT_NE(second->exit_code, 0);
  EXPECT_TRUE(absl::EndsWith(
      second->stderr_text,
      absl::StrCat(service.component, ": ", first.metrics_address, ": address already in use\n")))
      << second->stderr_text;
}

TEST_P(ServiceProcessTest, UnknownFlagPrintsUsageAndFails) {
  const ServiceCase& service = GetParam();
  std::vector<std::string> argv = {service.binary, "--no-such-flag=1"};
  const std::vector<std::string> args = service.args();
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<testing::RunResult> result = testing::Run(argv, absl::Seconds(30));
  ASSERT_OK(result);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "--no-such-flag")) << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "Usage:")) << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "--metrics-address"));
}

TEST_P(ServiceProcessTest, ProlongctlHealthReportsServingThenUnreachable) {
  const ServiceCase& service = GetParam();
  RunningService running = StartService(service);
  ASSERT_FALSE(running.grpc_address.empty());

  absl::StatusOr<testing::RunResult> result =
      testing::Run({kProlongctl, "health", running.grpc_address}, absl::Seconds(30));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_EQ(result->stdout_text, running.grpc_address + ": SERVING\n");

  result = testing::Run({kProlongctl, "health", running.grpc_address, "--service=no.Such"},
                        absl::Seconds(30));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "unknown service"));

  running.process->Signal(SIGTERM);
  ASSERT_OK(running.process->Wait(absl::Seconds(5)));
  result = testing::Run({kProlongctl, "health", running.grpc_address, "--timeout-seconds=1"},
                        absl::Seconds(30));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "unreachable"));
}

INSTANTIATE_TEST_SUITE_P(AllServices, ServiceProcessTest, ::testing::ValuesIn(AllServices()),
                         [](const auto& info) { return info.param.component; });

}  // namespace
}  // namespace prolong
