// The services at their limits, with real processes over loopback: for each load, how the calls
// were answered and the service's peak resident memory (VmHWM, the high-water mark of what its
// process_resident_memory_bytes shows), with the service's bound as configured and, side by
// side, with the bound raised out of the way, so that what the bound holds back is measured.
//
//   plans     --plans distinct PlanStage calls (seeds 1..N, 8 clients at once) to a datamixer,
//             each a stage of --plan_steps steps; plans kept: --max-plans=64 (the default; least
//             recently used dropped) against --max-plans=N. Memory after every tenth of them.
//   streams   --streams StreamBatches clients at once, each reading one batch and then holding
//             its stream open (the datamixer fills its read-ahead meanwhile);
//             --max-streams=N/2 against the default 512.
//   watches   --watches WatchRun streams on one run of a scheduler, each reading one event and
//             holding on; --max-watches=N/2 against the default 256.
//   submits   --submitters concurrent SubmitRun callers, --runs_per_submitter runs each, every
//             run left pending (its datamixer is not there);
//             --max-unfinished-runs=half of them against the default 10000.
//
// Each service is started for one measurement and stopped by pid after it; the temporary
// directory is removed at the end.
//
//   bazel build //tools/bench:service_limits //services/{datamixer,scheduler}
//   bazel-bin/tools/bench/service_limits --bin=bazel-bin [--measure=plans,streams,watches,submits]

#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/grpc_status.h"
#include "common/proto_file.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "prolong/v1/datamixer.grpc.pb.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"

namespace prolong {
namespace {

using testing::ServiceProcess;

struct Flags {
  std::string bin = "bazel-bin";
  std::vector<std::string> measure = {"plans", "streams", "watches", "submits"};
  int plans = 1000;
  int64_t plan_steps = 10000;
  int streams = 64;
  int watches = 100;
  int submitters = 50;
  int runs_per_submitter = 20;
};

// A /proc/PID/status field's number ("VmRSS" and "VmHWM" in KiB, "Threads"); -1 if unreadable.
int64_t StatusField(pid_t pid, absl::string_view field) {
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, field) || !absl::ConsumePrefix(&line, ":")) continue;
    int64_t value = 0;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &value)) return value;
  }
  return -1;
}

// How calls were answered: "OK 64" or "OK 32, RESOURCE_EXHAUSTED 32".
class Answers {
 public:
  void Add(grpc::StatusCode code) {
    absl::MutexLock lock(&mu_);
    ++counts_[code];
  }
  std::string ToString() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> parts;
    for (const auto& [code, count] : counts_) {
      // gRPC's codes are Abseil's, number for number.
      parts.push_back(
          absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), " ", count));
    }
    return absl::StrJoin(parts, ", ");
  }

 private:
  absl::Mutex mu_;
  std::map<grpc::StatusCode, int> counts_ ABSL_GUARDED_BY(mu_);
};

// A service started for one measurement, stopped (SIGTERM, then SIGKILL) when this goes.
class Running {
 public:
  static absl::StatusOr<Running> Start(const std::vector<std::string>& argv) {
    ASSIGN_OR_RETURN(ServiceProcess service, testing::StartService(argv));
    return Running(std::move(service));
  }
  Running(Running&&) = default;
  ~Running() {
    if (service_.process == nullptr) return;
    service_.process->Signal(SIGTERM);
    if (!service_.process->Wait(absl::Seconds(30)).ok()) service_.process->Signal(SIGKILL);
  }
  const std::string& address() const { return service_.address; }
  double RssMib() const { return StatusField(service_.process->pid(), "VmRSS") / 1024.0; }
  double PeakMib() const { return StatusField(service_.process->pid(), "VmHWM") / 1024.0; }
  int64_t Threads() const { return StatusField(service_.process->pid(), "Threads"); }

 private:
  explicit Running(ServiceProcess service) : service_(std::move(service)) {}
  ServiceProcess service_;
};

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
}

// Runs `clients` threads of `body(client)` and waits for them.
void InParallel(int clients, const std::function<void(int)>& body) {
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) threads.emplace_back(body, c);
  for (std::thread& thread : threads) thread.join();
}

absl::StatusOr<v1::StageSpec> Stage(int64_t seq_len, int64_t batch_tokens, int64_t steps) {
  v1::StageSpec stage;
  RETURN_IF_ERROR(ParseYamlProto(
      absl::StrCat("name: load\nseq_len: ", seq_len, "\nbatch_tokens: ", batch_tokens,
                   "\ntotal_tokens: ", steps * batch_tokens,
                   "\nallow_repetition: true\nschedule: {peak_lr: 0.001}\nmixture:\n"
                   "  - {domain: books, proportion: 0.5, packing: short}\n"
                   "  - {domain: web, proportion: 0.5, packing: short}\n"),
      "stage", &stage));
  return stage;
}

absl::StatusOr<Running> StartDatamixer(const Flags& flags, const std::string& store,
                                       const std::string& bound) {
  return Running::Start({absl::StrCat(flags.bin, "/", testing::kDatamixerBinary),
                         "--store=" + store, "--address=127.0.0.1:0", "--metrics-address=off",
                         bound});
}

absl::StatusOr<Running> StartScheduler(const Flags& flags, const std::string& state_dir,
                                       const std::string& bound) {
  // No datamixer: every run stays pending, and no gang starts.
  return Running::Start({absl::StrCat(flags.bin, "/", testing::kSchedulerBinary),
                         "--state-dir=" + state_dir, "--address=127.0.0.1:0",
                         "--metrics-address=off", "--trainer-binary=/bin/false",
                         "--datamixer=127.0.0.1:1", bound});
}

absl::Status MeasurePlans(const Flags& flags, const std::string& root) {
  ASSIGN_OR_RETURN(const v1::StageSpec stage, Stage(64, 256, flags.plan_steps));
  for (const int max_plans : {64, flags.plans}) {
    ASSIGN_OR_RETURN(Running datamixer, StartDatamixer(flags, root + "/store",
                                                       absl::StrCat("--max-plans=", max_plans)));
    auto stub = v1::DataMixer::NewStub(Channel(datamixer.address()));
    Answers answers;
    std::vector<std::string> rss = {absl::StrFormat("%.0f", datamixer.RssMib())};
    const int tenth = std::max(1, flags.plans / 10);
    const absl::Time started = absl::Now();
    for (int first = 0; first < flags.plans; first += tenth) {
      std::atomic<int> next{first};
      const int end = std::min(flags.plans, first + tenth);
      InParallel(8, [&](int) {
        for (int seed = next++; seed < end; seed = next++) {
          v1::PlanStageRequest request;
          *request.mutable_stage() = stage;
          request.set_seed(seed + 1);
          grpc::ClientContext context;
          v1::StagePlan plan;
          answers.Add(stub->PlanStage(&context, request, &plan).error_code());
        }
      });
      rss.push_back(absl::StrFormat("%.0f", datamixer.RssMib()));
    }
    std::printf(
        "plans: %d PlanStage calls of %lld steps, --max-plans=%d: %s in %.1f s; RSS MiB at "
        "0, 10%%, ..., 100%%: %s; peak %.0f MiB\n",
        flags.plans, static_cast<long long>(flags.plan_steps), max_plans,
        answers.ToString().c_str(), absl::ToDoubleSeconds(absl::Now() - started),
        absl::StrJoin(rss, " ").c_str(), datamixer.PeakMib());
  }
  return absl::OkStatus();
}

// `clients` streams opened at once by `open(client, context)`, each read once by `read_one`
// and then held for 3 s; the service's memory and threads as they are held.
template <typename Reader>
std::string HoldStreams(
    int clients, Answers& answers, const Running& service,
    const std::function<std::unique_ptr<Reader>(int, grpc::ClientContext&)>& open,
    const std::function<bool(Reader&)>& read_one) {
  absl::Mutex mu;
  int opened = 0;
  bool release = false;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      grpc::ClientContext context;
      std::unique_ptr<Reader> reader = open(c, context);
      const bool read = read_one(*reader);
      {
        absl::MutexLock lock(&mu);
        ++opened;
        if (read) mu.Await(absl::Condition(&release));
      }
      if (read) {
        context.TryCancel();
        (void)reader->Finish();
        answers.Add(grpc::StatusCode::OK);
      } else {
        answers.Add(reader->Finish().error_code());
      }
    });
  }
  {
    absl::MutexLock lock(&mu);
    auto all_opened = [&] { return opened == clients; };
    mu.Await(absl::Condition(&all_opened));
  }
  absl::SleepFor(absl::Seconds(3));
  const std::string held = absl::StrFormat("RSS %.0f MiB, %lld threads while held; peak %.0f MiB",
                                           service.RssMib(), service.Threads(), service.PeakMib());
  {
    absl::MutexLock lock(&mu);
    release = true;
  }
  for (std::thread& thread : threads) thread.join();
  return held;
}

absl::Status MeasureStreams(const Flags& flags, const std::string& root) {
  ASSIGN_OR_RETURN(const v1::StageSpec stage, Stage(4096, 8 * 4096, 1000));
  for (const int max_streams : {flags.streams / 2, 512}) {
    ASSIGN_OR_RETURN(
        Running datamixer,
        StartDatamixer(flags, root + "/store", absl::StrCat("--max-streams=", max_streams)));
    auto stub = v1::DataMixer::NewStub(Channel(datamixer.address()));
    v1::PlanStageRequest plan_request;
    *plan_request.mutable_stage() = stage;
    plan_request.set_seed(1);
    grpc::ClientContext plan_context;
    v1::StagePlan plan;
    RETURN_IF_ERROR(FromGrpcStatus(stub->PlanStage(&plan_context, plan_request, &plan)));
    const double before = datamixer.RssMib();
    Answers answers;
    using Reader = grpc::ClientReader<v1::Batch>;
    std::vector<std::unique_ptr<v1::DataMixer::Stub>> stubs;
    for (int c = 0; c < flags.streams; ++c) {
      stubs.push_back(v1::DataMixer::NewStub(Channel(datamixer.address())));
    }
    const std::string held = HoldStreams<Reader>(
        flags.streams, answers, datamixer,
        [&](int c, grpc::ClientContext& context) {
          v1::StreamBatchesRequest request;
          request.set_plan_id(plan.plan_id());
          request.mutable_rank()->set_dp_size(1);
          request.mutable_rank()->set_cp_size(1);
          return stubs[c]->StreamBatches(&context, request);
        },
        [](Reader& reader) {
          v1::Batch batch;
          return reader.Read(&batch);
        });
    std::printf(
        "streams: %d StreamBatches clients (batches of %lld tokens), --max-streams=%d: %s; RSS "
        "%.0f MiB before, %s\n",
        flags.streams, static_cast<long long>(stage.batch_tokens()), max_streams,
        answers.ToString().c_str(), before, held.c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RunSpec> PendingRunSpec(const std::string& root) {
  v1::RunSpec spec;
  RETURN_IF_ERROR(ParseYamlProto(
      absl::StrCat("name: load\nseed: 3\n", testing::kTinyModelYaml,
                   "stages:\n  - {name: main, seq_len: 64, batch_tokens: 256, total_tokens: 2560,\n"
                   "     schedule: {peak_lr: 0.001},\n"
                   "     mixture: [{domain: web, proportion: 1, packing: short}]}\n"
                   "resources: {data_parallel: 1}\ncheckpoint: {directory: ",
                   root, "/checkpoints}\n"),
      "spec", &spec));
  return spec;
}

absl::Status MeasureWatches(const Flags& flags, const std::string& root) {
  ASSIGN_OR_RETURN(const v1::RunSpec spec, PendingRunSpec(root));
  for (const int max_watches : {flags.watches / 2, 256}) {
    const std::string state = absl::StrCat(root, "/watches-", max_watches);
    ASSIGN_OR_RETURN(Running scheduler,
                     StartScheduler(flags, state, absl::StrCat("--max-watches=", max_watches)));
    auto stub = v1::Scheduler::NewStub(Channel(scheduler.address()));
    v1::SubmitRunRequest submit;
    *submit.mutable_spec() = spec;
    grpc::ClientContext submit_context;
    v1::Run run;
    RETURN_IF_ERROR(FromGrpcStatus(stub->SubmitRun(&submit_context, submit, &run)));
    const double before = scheduler.RssMib();
    Answers answers;
    using Reader = grpc::ClientReader<v1::RunEvent>;
    std::vector<std::unique_ptr<v1::Scheduler::Stub>> stubs;
    for (int c = 0; c < flags.watches; ++c) {
      stubs.push_back(v1::Scheduler::NewStub(Channel(scheduler.address())));
    }
    const std::string held = HoldStreams<Reader>(
        flags.watches, answers, scheduler,
        [&](int c, grpc::ClientContext& context) {
          v1::WatchRunRequest request;
          request.set_run_id(run.run_id());
          return stubs[c]->WatchRun(&context, request);
        },
        [](Reader& reader) {
          v1::RunEvent event;
          return reader.Read(&event);
        });
    std::printf("watches: %d WatchRun clients, --max-watches=%d: %s; RSS %.0f MiB before, %s\n",
                flags.watches, max_watches, answers.ToString().c_str(), before, held.c_str());
  }
  return absl::OkStatus();
}

absl::Status MeasureSubmits(const Flags& flags, const std::string& root) {
  ASSIGN_OR_RETURN(const v1::RunSpec spec, PendingRunSpec(root));
  const int total = flags.submitters * flags.runs_per_submitter;
  for (const int max_unfinished : {total / 2, 10000}) {
    const std::string state = absl::StrCat(root, "/submits-", max_unfinished);
    ASSIGN_OR_RETURN(
        Running scheduler,
        StartScheduler(flags, state, absl::StrCat("--max-unfinished-runs=", max_unfinished)));
    const double before = scheduler.RssMib();
    const int64_t threads_before = scheduler.Threads();
    Answers answers;
    const absl::Time started = absl::Now();
    InParallel(flags.submitters, [&](int c) {
      auto stub = v1::Scheduler::NewStub(Channel(scheduler.address()));
      for (int r = 0; r < flags.runs_per_submitter; ++r) {
        v1::SubmitRunRequest request;
        *request.mutable_spec() = spec;
        request.set_request_id(absl::StrCat("client-", c, "-run-", r));
        grpc::ClientContext context;
        v1::Run run;
        answers.Add(stub->SubmitRun(&context, request, &run).error_code());
      }
    });
    const absl::Duration took = absl::Now() - started;
    absl::SleepFor(absl::Seconds(2));  // every driver started
    std::printf(
        "submits: %d callers x %d runs, --max-unfinished-runs=%d: %s in %.1f s; RSS %.0f MiB, "
        "%lld threads before, RSS %.0f MiB, %lld threads after; peak %.0f MiB\n",
        flags.submitters, flags.runs_per_submitter, max_unfinished, answers.ToString().c_str(),
        absl::ToDoubleSeconds(took), before, threads_before, scheduler.RssMib(),
        scheduler.Threads(), scheduler.PeakMib());
  }
  return absl::OkStatus();
}

absl::Status Main(const Flags& flags) {
  const std::string root = testing::MakeTempDir();
  absl::Status status = testing::WriteLearnableCorpus(root + "/store");
  for (const std::string& measure : flags.measure) {
    if (!status.ok()) break;
    if (measure == "plans") status = MeasurePlans(flags, root);
    if (measure == "streams") status = MeasureStreams(flags, root);
    if (measure == "watches") status = MeasureWatches(flags, root);
    if (measure == "submits") status = MeasureSubmits(flags, root);
    std::fflush(stdout);
  }
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
  return status;
}

}  // namespace
}  // namespace prolong

int main(int argc, char** argv) {
  prolong::Flags flags;
  CLI::App app("Each service's bounds under load, and its peak memory");
  app.add_option("--bin", flags.bin, "Where the service binaries are (bazel-bin)");
  app.add_option("--measure", flags.measure, "plans, streams, watches, submits")
      ->delimiter(',')
      ->check(CLI::IsMember({"plans", "streams", "watches", "submits"}));
  app.add_option("--plans", flags.plans, "Distinct PlanStage calls")->check(CLI::PositiveNumber);
  app.add_option("--plan_steps", flags.plan_steps, "Steps of each planned stage")
      ->check(CLI::PositiveNumber);
  app.add_option("--streams", flags.streams, "StreamBatches clients")->check(CLI::PositiveNumber);
  app.add_option("--watches", flags.watches, "WatchRun clients")->check(CLI::PositiveNumber);
  app.add_option("--submitters", flags.submitters, "Concurrent SubmitRun callers")
      ->check(CLI::PositiveNumber);
  app.add_option("--runs_per_submitter", flags.runs_per_submitter, "Runs each caller submits")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const absl::Status status = prolong::Main(flags);
  if (!status.ok()) {
    std::fprintf(stderr, "service_limits: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
