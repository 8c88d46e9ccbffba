// The scheduler under load, with real processes: a scheduler, a datamixer, and the trainer
// workers the scheduler launches. Three measurements, each selectable with --measure:
//
//   submit    SubmitRun latency with --clients concurrent clients (each its own channel), each
//             submitting --runs_per_client runs with distinct request ids, while --get_clients
//             more clients call GetRun (with no pause, or --get_rate calls/s together: a
//             load that does not grow when GetRun gets faster); the scheduler is given a datamixer
//             that is not there, so every run stays PENDING and no gang starts: what is timed is
//             SubmitRun's whole path (spec checks, the synced RocksDB write, the run's first driver
//             step), and the CPU each submission cost the scheduler and the clients meanwhile. One
//             client alone first, for the cost of one submission without queueing. Then the
//             scheduler's CPU use, threads and memory with every run pending, against the same
//             scheduler idle before the first submission.
//   recovery  A run of the tiny Llama on 2 workers (dp 2): after its first checkpoint rank 1 is
//             killed (SIGKILL); from the scheduler's WatchRun stream, the WorkerLost event's time
//             to the first StepMetrics event of the new attempt. After the new gang's first
//             checkpoint, rank 0 is stopped (SIGSTOP): the time from the stop to the WorkerLost
//             event, against the spec's heartbeat timeout, then again to the next first step.
//   watch     Runs of a somewhat larger (still CPU-tiny) Llama on 2 workers, each cut into
//             --window_s windows, without and with --streams WatchRun streams in turn (each a
//             client thread with its own channel reading every event, resuming after the last
//             event it read as `prolongctl run watch` does); tokens/s of the steps inside each
//             window, from the run's StepMetrics events: the trainer's per-step figure and the
//             batch positions over the time between the trainer's step timestamps (which
//             includes the step's ReportMetrics call); each window with the streams against
//             the mean of the two without either side of it, left out where processes not
//             taking part used more than --max_other_cores in one of the three. Also the CPU
//             the scheduler, the stream readers, the workers and the whole machine used.
//
// Every process it starts is stopped by pid at the end (or on SIGINT and SIGTERM), the workers
// of each scheduler too, and its temporary directory is removed. Each round says how much CPU
// processes not taking part used meanwhile: run it on an otherwise idle machine.
//
//   bazel build //tools/bench:scheduler_load //services/{scheduler,datamixer,trainer}
//   bazel-bin/tools/bench/scheduler_load --bin=bazel-bin [--measure=submit,recovery,watch]

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/file.h"
#include "common/grpc_status.h"
#include "common/proto_file.h"
#include "common/status_macros.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"

namespace prolong {
namespace {

using testing::Subprocess;

struct Flags {
  std::string bin = "bazel-bin";
  std::vector<std::string> measure = {"submit", "recovery", "watch"};
  // submit
  int submit_rounds = 3;
  int clients = 50;
  int runs_per_client = 20;
  int get_clients = 10;
  double get_rate = 0;
  int serial_submits = 100;
  double cpu_window_s = 10;
  // recovery
  int recovery_rounds = 3;
  int heartbeat_timeout_s = 5;
  int heartbeat_interval_ms = 1000;
  int restart_backoff_ms = 1000;
  // watch
  int watch_rounds = 3;
  int streams = 100;
  int watch_steps = 900;
  int watch_warmup_steps = 3;
  int window_s = 6;
  int settle_s = 1;
  double max_other_cores = 0.05;
};

// ------------------------------------------------------------------------------------------------
// Statistics

double Median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Nearest rank.
double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

struct LatencySummary {
  int64_t count = 0;
  double p50_ms = NAN;
  double p99_ms = NAN;
  double max_ms = NAN;

  static LatencySummary Of(const std::vector<double>& ms) {
    LatencySummary summary;
    summary.count = static_cast<int64_t>(ms.size());
    summary.p50_ms = Percentile(ms, 0.50);
    summary.p99_ms = Percentile(ms, 0.99);
    summary.max_ms = Percentile(ms, 1.0);
    return summary;
  }
  std::string ToString() const {
    return absl::StrFormat("p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d calls)", p50_ms, p99_ms,
                           max_ms, count);
  }
};

// Collects latencies from many threads.
class LatencyLog {
 public:
  void Add(absl::Duration latency) {
    absl::MutexLock lock(&mu_);
    ms_.push_back(absl::ToDoubleMilliseconds(latency));
  }
  std::vector<double> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(ms_);
  }

 private:
  absl::Mutex mu_;
  std::vector<double> ms_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------------------------------------------
// Processes

// CPU time, threads and resident memory of a process, from /proc/PID/stat.
struct ProcessSample {
  absl::Time time;
  double cpu_seconds = 0;
  double children_cpu_seconds = 0;  // of its children that it has reaped
  pid_t parent = 0;
  int threads = 0;
  double rss_mib = 0;
};

absl::StatusOr<ProcessSample> SampleProcess(pid_t pid) {
  ProcessSample sample;
  sample.time = absl::Now();
  ASSIGN_OR_RETURN(const std::string stat, ReadFile(absl::StrCat("/proc/", pid, "/stat")));
  // The command name (field 2) is in parentheses and may hold spaces: count from after it.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 > stat.size()) {
    return absl::InternalError(absl::StrCat("/proc/", pid, "/stat: ", stat));
  }
  const std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17,
  // num_threads 20, rss 24.
  int64_t utime = 0, stime = 0, cutime = 0, cstime = 0, threads = 0, rss_pages = 0;
  if (fields.size() < 22 || !absl::SimpleAtoi(fields[1], &sample.parent) ||
      !absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime) ||
      !absl::SimpleAtoi(fields[13], &cutime) || !absl::SimpleAtoi(fields[14], &cstime) ||
      !absl::SimpleAtoi(fields[17], &threads) || !absl::SimpleAtoi(fields[21], &rss_pages)) {
    return absl::InternalError(absl::StrCat("/proc/", pid, "/stat: ", stat));
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  sample.cpu_seconds = static_cast<double>(utime + stime) / tick;
  sample.children_cpu_seconds = static_cast<double>(cutime + cstime) / tick;
  sample.threads = static_cast<int>(threads);
  sample.rss_mib = static_cast<double>(rss_pages) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
                   (1024.0 * 1024.0);
  return sample;
}

// Cores used between two samples.
double CoresBetween(const ProcessSample& before, const ProcessSample& after) {
  return (after.cpu_seconds - before.cpu_seconds) /
         std::max(1e-9, absl::ToDoubleSeconds(after.time - before.time));
}

// CPU seconds of the whole machine (every core, from /proc/stat).
absl::StatusOr<double> MachineCpuSeconds() {
  ASSIGN_OR_RETURN(const std::string stat, ReadFile("/proc/stat"));
  // "cpu  user nice system idle iowait irq softirq steal ..."
  const std::string first_line = stat.substr(0, stat.find('\n'));
  const std::vector<absl::string_view> fields = absl::StrSplit(first_line, ' ', absl::SkipEmpty());
  double busy = 0;
  for (size_t k = 1; k < fields.size() && k <= 8; ++k) {
    int64_t ticks = 0;
    if (k == 4 || k == 5) continue;  // idle, iowait
    if (!absl::SimpleAtoi(fields[k], &ticks)) {
      return absl::InternalError("/proc/stat: " + first_line);
    }
    busy += static_cast<double>(ticks);
  }
  return busy / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The CPU that processes other than this one and its children use, over a stretch in which
// the children that count end (and are reaped) or are named in `live`.
class OtherProcesses {
 public:
  static absl::StatusOr<OtherProcesses> Start(const std::vector<pid_t>& live = {}) {
    OtherProcesses others;
    others.live_ = live;
    ASSIGN_OR_RETURN(others.start_, Ours(live));
    ASSIGN_OR_RETURN(others.machine_, MachineCpuSeconds());
    others.time_ = absl::Now();
    return others;
  }
  // Cores used since Start.
  absl::StatusOr<double> Cores() const {
    ASSIGN_OR_RETURN(const double ours, Ours(live_));
    ASSIGN_OR_RETURN(const double machine, MachineCpuSeconds());
    return ((machine - machine_) - (ours - start_)) /
           std::max(1e-9, absl::ToDoubleSeconds(absl::Now() - time_));
  }

 private:
  static absl::StatusOr<double> Ours(const std::vector<pid_t>& live) {
    ASSIGN_OR_RETURN(const ProcessSample self, SampleProcess(getpid()));
    double seconds = self.cpu_seconds + self.children_cpu_seconds;
    for (pid_t pid : live) {
      ASSIGN_OR_RETURN(const ProcessSample child, SampleProcess(pid));
      seconds += child.cpu_seconds + child.children_cpu_seconds;
    }
    return seconds;
  }

  std::vector<pid_t> live_;
  double start_ = 0, machine_ = 0;
  absl::Time time_;
};

bool IsTrainerProcess(pid_t pid) {
  absl::StatusOr<std::string> cmdline = ReadFile(absl::StrCat("/proc/", pid, "/cmdline"));
  return cmdline.ok() && absl::StrContains(*cmdline, "trainer");
}

// The children running now, so that a signal that ends this process can end them first.
absl::Mutex children_mu(absl::kConstInit);
std::vector<pid_t>& Children() ABSL_EXCLUSIVE_LOCKS_REQUIRED(children_mu) {
  static auto* children = new std::vector<pid_t>();
  return *children;
}

// On SIGINT or SIGTERM: kills the children (their workers die with the schedulers), removes
// `root` and exits.
void CleanUpOnSignal(const std::string& root) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any other thread starts
  std::thread([signals, root] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    {
      absl::MutexLock lock(&children_mu);
      for (pid_t pid : Children()) {
        absl::StatusOr<ProcessSample> child = SampleProcess(pid);
        if (child.ok() && child->parent == getpid()) kill(pid, SIGKILL);
      }
    }
    absl::SleepFor(absl::Seconds(1));
    std::error_code ignored;
    std::filesystem::remove_all(root, ignored);
    _exit(128 + signal_number);
  }).detach();
}

// A service binary started as a child, with the address its ready line gives.
struct Service {
  std::unique_ptr<Subprocess> process;
  std::string address;
};

absl::StatusOr<Service> StartService(const std::vector<std::string>& argv) {
  Service service;
  ASSIGN_OR_RETURN(service.process, Subprocess::Start(argv));
  {
    absl::MutexLock lock(&children_mu);
    Children().push_back(service.process->pid());
  }
  absl::StatusOr<std::string> line = service.process->ReadStdoutLine(absl::Seconds(60));
  if (!line.ok()) return Annotate(line.status(), argv[0]);
  for (absl::string_view field : absl::StrSplit(*line, ' ')) {
    if (absl::ConsumePrefix(&field, "grpc=")) service.address = std::string(field);
  }
  if (service.address.empty()) {
    return absl::InternalError(absl::StrCat(argv[0], ": no address in its ready line: ", *line));
  }
  return service;
}

// Stops a child: SIGTERM, then SIGKILL if it has not exited within `grace`.
void Stop(Subprocess& process, absl::Duration grace) {
  process.Signal(SIGTERM);
  if (!process.Wait(grace).ok()) {
    process.Signal(SIGKILL);
    process.Wait(absl::Seconds(10)).IgnoreError();
  }
  absl::MutexLock lock(&children_mu);
  std::vector<pid_t>& children = Children();
  children.erase(std::remove(children.begin(), children.end(), process.pid()), children.end());
}

// A scheduler process. Its workers are its children (they die with the thread that launched
// them); any the scheduler leaves behind are killed by pid when this is destroyed.
class SchedulerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<SchedulerProcess>> Start(
      const Flags& flags, const std::string& state_dir, const std::string& datamixer_address) {
    const std::string trainer =
        std::filesystem::absolute(absl::StrCat(flags.bin, "/", testing::kTrainerBinary)).string();
    ASSIGN_OR_RETURN(
        Service service,
        StartService({absl::StrCat(flags.bin, "/", testing::kSchedulerBinary),
                      "--state-dir=" + state_dir, "--address=127.0.0.1:0", "--metrics-address=off",
                      "--trainer-binary=" + trainer, "--datamixer=" + datamixer_address,
                      absl::StrCat("--heartbeat-interval-ms=", flags.heartbeat_interval_ms),
                      absl::StrCat("--restart-backoff-ms=", flags.restart_backoff_ms),
                      // What is timed is submission, not the cap on unfinished runs.
                      "--max-unfinished-runs=1000000"}));
    return std::unique_ptr<SchedulerProcess>(new SchedulerProcess(std::move(service)));
  }

  ~SchedulerProcess() {
    const std::vector<pid_t> workers = WorkerPids(-1);
    Stop(*service_.process, absl::Seconds(30));
    for (pid_t pid : workers) {
      if (kill(pid, 0) == 0 && IsTrainerProcess(pid)) kill(pid, SIGKILL);
    }
  }

  const std::string& address() const { return service_.address; }
  pid_t pid() const { return service_.process->pid(); }
  std::string Log() const { return service_.process->Stderr(); }

  // The pids of the workers of `attempt` (-1: of every attempt), from the scheduler's log of
  // their registrations: "worker RUN/ATTEMPT/RANK registered (HOST, pid PID)".
  std::vector<pid_t> WorkerPids(int64_t attempt) const {
    std::vector<pid_t> pids;
    const std::string log = Log();
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      const size_t worker = line.find("worker ");
      const size_t registered = line.find(" registered (");
      const size_t pid_at = line.rfind(", pid ");
      if (worker == absl::string_view::npos || registered == absl::string_view::npos ||
          pid_at == absl::string_view::npos || pid_at < registered) {
        continue;
      }
      const std::vector<absl::string_view> id =
          absl::StrSplit(line.substr(worker + 7, registered - worker - 7), '/');
      int64_t worker_attempt = 0;
      int pid = 0;
      if (id.size() < 3 || !absl::SimpleAtoi(id[id.size() - 2], &worker_attempt) ||
          !absl::SimpleAtoi(absl::StripSuffix(line.substr(pid_at + 6), ")"), &pid)) {
        continue;
      }
      if (attempt < 0 || worker_attempt == attempt) pids.push_back(pid);
    }
    return pids;
  }

  absl::StatusOr<std::vector<pid_t>> AwaitWorkerPids(int64_t attempt, size_t count,
                                                     absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      std::vector<pid_t> pids = WorkerPids(attempt);
      if (pids.size() >= count) return pids;
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(pids.size(), " of ", count, " workers of attempt ", attempt,
                         " registered; scheduler log tail: ", Tail(Log())));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  static std::string Tail(const std::string& text) {
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

 private:
  explicit SchedulerProcess(Service service) : service_(std::move(service)) {}
  Service service_;
};

// ------------------------------------------------------------------------------------------------
// Clients

// A channel of its own, as separate client processes would have.
std::unique_ptr<v1::Scheduler::Stub> Connect(const std::string& address) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return v1::Scheduler::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments));
}

absl::Time TimeOf(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

absl::StatusOr<v1::Run> Submit(v1::Scheduler::Stub& stub, const v1::RunSpec& spec,
                               const std::string& request_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::SubmitRunRequest request;
  *request.mutable_spec() = spec;
  request.set_request_id(request_id);
  v1::Run run;
  RETURN_IF_ERROR(FromGrpcStatus(stub.SubmitRun(&context, request, &run)));
  return run;
}

absl::StatusOr<v1::Run> Get(v1::Scheduler::Stub& stub, const std::string& run_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  RETURN_IF_ERROR(FromGrpcStatus(stub.GetRun(&context, request, &run)));
  return run;
}

absl::Status Cancel(v1::Scheduler::Stub& stub, const std::string& run_id) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::CancelRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  return FromGrpcStatus(stub.CancelRun(&context, request, &run));
}

// Opens the channel's connection, so that no timed call pays for it.
void Warm(v1::Scheduler::Stub& stub) { Get(stub, "warm-up").status().IgnoreError(); }

// A run's events as they arrive, read on a thread of its own.
class EventStream {
 public:
  EventStream(const std::string& address, const std::string& run_id) : stub_(Connect(address)) {
    v1::WatchRunRequest request;
    request.set_run_id(run_id);
    thread_ = std::thread([this, request] {
      std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader =
          stub_->WatchRun(&context_, request);
      v1::RunEvent event;
      while (reader->Read(&event)) {
        absl::MutexLock lock(&mu_);
        events_.push_back(event);
      }
      const absl::Status status = FromGrpcStatus(reader->Finish());
      absl::MutexLock lock(&mu_);
      ended_ = true;
      status_ = status;
    });
  }
  ~EventStream() {
    context_.TryCancel();
    thread_.join();
  }

  // The next event `wanted` accepts; the ones before it are dropped.
  absl::StatusOr<v1::RunEvent> Next(const std::function<bool(const v1::RunEvent&)>& wanted,
                                    absl::Duration timeout, absl::string_view what) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock lock(&mu_);
    while (true) {
      while (!events_.empty()) {
        v1::RunEvent event = std::move(events_.front());
        events_.pop_front();
        if (wanted(event)) return event;
      }
      if (ended_) {
        return absl::FailedPreconditionError(
            absl::StrCat("the run's events ended before ", what, " (", status_.ToString(), ")"));
      }
      if (!mu_.AwaitWithDeadline(absl::Condition(this, &EventStream::Arrived), deadline)) {
        return absl::DeadlineExceededError(
            absl::StrCat("no ", what, " within ", absl::FormatDuration(timeout)));
      }
    }
  }

 private:
  bool Arrived() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !events_.empty() || ended_; }

  std::unique_ptr<v1::Scheduler::Stub> stub_;
  grpc::ClientContext context_;
  mutable absl::Mutex mu_;
  std::deque<v1::RunEvent> events_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Every event of an ended run.
absl::StatusOr<std::vector<v1::RunEvent>> AllEvents(const std::string& address,
                                                    const std::string& run_id) {
  std::unique_ptr<v1::Scheduler::Stub> stub = Connect(address);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchRunRequest request;
  request.set_run_id(run_id);
  std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader = stub->WatchRun(&context, request);
  std::vector<v1::RunEvent> events;
  v1::RunEvent event;
  while (reader->Read(&event)) events.push_back(event);
  RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  return events;
}

// ------------------------------------------------------------------------------------------------
// The data and the runs

// Wider, deeper and on longer sequences than testing::kTinyModelYaml, for steps long enough to
// time.
constexpr char kSmallModelYaml[] = R"(model:
  config: {vocab_size: 256, hidden_size: 128, intermediate_size: 344, num_hidden_layers: 4,
           num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 1024,
           bos_token_id: 1, eos_token_ids: [2]}
  precision: fp32
)";

struct RunShape {
  std::string name;
  const char* model;  // the spec's `model:` block
  int64_t seq_len;
  int64_t batch_tokens;
  int64_t steps;
  int64_t checkpoint_every;
  int heartbeat_timeout_s;
};

// One stage on dp 2, from the two test domains (repeated as often as the steps need).
absl::StatusOr<v1::RunSpec> Spec(const RunShape& shape, const std::string& checkpoint_dir) {
  const std::string yaml = absl::StrCat(
      "name: ", shape.name, "\nseed: 3\n", shape.model,
      "stages:\n  - name: main\n    seq_len: ", shape.seq_len,
      "\n    batch_tokens: ", shape.batch_tokens,
      "\n    total_tokens: ", shape.steps * shape.batch_tokens,
      "\n    allow_repetition: true"
      "\n    schedule: {peak_lr: 0.003, warmup_fraction: 0.05, shape: cosine, min_lr_ratio: 0.1}"
      "\n    mixture:"
      "\n      - {domain: books, proportion: 0.5, packing: long}"
      "\n      - {domain: web, proportion: 0.5, packing: short}"
      "\nresources: {data_parallel: 2}\ncheckpoint: {directory: ",
      checkpoint_dir, ", every_steps: ", shape.checkpoint_every,
      "}\nfault: {max_restarts: 3, heartbeat_timeout: ", shape.heartbeat_timeout_s,
      "s, rendezvous_timeout: 120s}\n");
  v1::RunSpec spec;
  RETURN_IF_ERROR(ParseYamlProto(yaml, "spec", &spec));
  return spec;
}

// ------------------------------------------------------------------------------------------------
// submit

struct SubmitRound {
  LatencySummary serial;  // one client alone
  LatencySummary submit;  // --clients at once
  double submits_per_second = 0;
  // CPU per submission while they submit (GetRun calls beside them included): the scheduler's,
  // and this process's (the clients').
  double scheduler_ms_per_submit = 0, clients_ms_per_submit = 0;
  LatencySummary get_during;  // GetRun while they submit
  LatencySummary get_after;   // GetRun with every run pending, nothing submitted
  int64_t runs = 0;
  double idle_cores = 0, pending_cores = 0;
  int idle_threads = 0, pending_threads = 0;
  double idle_rss_mib = 0, pending_rss_mib = 0;
  double idle_log_lines_per_s = 0, pending_log_lines_per_s = 0;
  double other_cores = 0;  // used by processes not taking part, over the round
};

struct CpuWindow {
  double cores;
  int threads;
  double rss_mib;
  double log_lines_per_s;
};

absl::StatusOr<CpuWindow> MeasureCpu(const SchedulerProcess& scheduler, absl::Duration window) {
  const std::string log_before = scheduler.Log();
  const int64_t lines_before = std::count(log_before.begin(), log_before.end(), '\n');
  ASSIGN_OR_RETURN(const ProcessSample before, SampleProcess(scheduler.pid()));
  absl::SleepFor(window);
  ASSIGN_OR_RETURN(const ProcessSample after, SampleProcess(scheduler.pid()));
  const std::string log = scheduler.Log();
  const int64_t lines_after = std::count(log.begin(), log.end(), '\n');
  return CpuWindow{CoresBetween(before, after), after.threads, after.rss_mib,
                   static_cast<double>(lines_after - lines_before) /
                       absl::ToDoubleSeconds(after.time - before.time)};
}

// GetRun from `clients` threads, each on its own channel, on the runs `pick` chooses, until
// Finish.
class Getters {
 public:
  // Each client calls once per `interval` (or again at once if a call took longer); zero: no
  // pause between calls.
  Getters(const std::string& address, int clients, absl::Duration interval,
          std::function<std::string(std::mt19937&)> pick)
      : pick_(std::move(pick)) {
    absl::BlockingCounter ready(clients);
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back([this, address, c, interval, &ready] {
        std::unique_ptr<v1::Scheduler::Stub> stub = Connect(address);
        Warm(*stub);
        ready.DecrementCount();
        std::mt19937 random(c);
        absl::Time next = absl::Now();
        while (!done_.HasBeenNotified()) {
          // Paced: wait for this call's time (without a pause, it has always come).
          if (absl::Now() < next && done_.WaitForNotificationWithDeadline(next)) break;
          next = std::max(next + interval, absl::Now());
          const std::string run_id = pick_(random);
          const absl::Time start = absl::Now();
          absl::StatusOr<v1::Run> run = Get(*stub, run_id);
          if (!run.ok()) {
            absl::MutexLock lock(&mu_);
            if (error_.ok()) error_ = Annotate(run.status(), "GetRun");
            continue;
          }
          log_.Add(absl::Now() - start);
        }
      });
    }
    ready.Wait();
  }
  ~Getters() { Finish().IgnoreError(); }

  // The latencies of every call.
  absl::StatusOr<std::vector<double>> Finish() {
    if (!done_.HasBeenNotified()) done_.Notify();
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(error_);
    return log_.Take();
  }

 private:
  std::function<std::string(std::mt19937&)> pick_;
  absl::Notification done_;
  LatencyLog log_;
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

absl::Duration GetInterval(const Flags& flags) {
  return flags.get_rate > 0 ? absl::Seconds(flags.get_clients / flags.get_rate)
                            : absl::ZeroDuration();
}

absl::StatusOr<SubmitRound> RunSubmitRound(const Flags& flags, int round, const std::string& dir) {
  SubmitRound result;
  // Nothing listens on port 1: every run waits for its first plan.
  ASSIGN_OR_RETURN(std::unique_ptr<SchedulerProcess> scheduler,
                   SchedulerProcess::Start(flags, dir + "/scheduler", "127.0.0.1:1"));
  ASSIGN_OR_RETURN(const v1::RunSpec spec,
                   Spec({"load", testing::kTinyModelYaml, 64, 256, 6, 2, flags.heartbeat_timeout_s},
                        dir + "/checkpoints"));

  // Idle, before any run.
  absl::SleepFor(absl::Seconds(1));
  ASSIGN_OR_RETURN(const CpuWindow idle, MeasureCpu(*scheduler, absl::Seconds(flags.cpu_window_s)));

  absl::Mutex ids_mu;
  std::vector<std::string> run_ids;
  auto record = [&](const std::string& run_id) {
    absl::MutexLock lock(&ids_mu);
    run_ids.push_back(run_id);
  };
  auto pick = [&](std::mt19937& random) {
    absl::MutexLock lock(&ids_mu);
    return run_ids[random() % run_ids.size()];
  };

  // One client alone.
  {
    std::unique_ptr<v1::Scheduler::Stub> stub = Connect(scheduler->address());
    Warm(*stub);
    LatencyLog log;
    for (int k = 0; k < flags.serial_submits; ++k) {
      const absl::Time start = absl::Now();
      ASSIGN_OR_RETURN(const v1::Run run,
                       Submit(*stub, spec, absl::StrCat("round", round, "-serial-", k)));
      log.Add(absl::Now() - start);
      record(run.run_id());
    }
    result.serial = LatencySummary::Of(log.Take());
  }

  // Every client at once, with GetRun beside them.
  {
    LatencyLog log;
    absl::Mutex error_mu;
    absl::Status error;
    absl::BlockingCounter ready(flags.clients);
    absl::Notification go;
    std::vector<std::thread> threads;
    for (int c = 0; c < flags.clients; ++c) {
      threads.emplace_back([&, c] {
        std::unique_ptr<v1::Scheduler::Stub> stub = Connect(scheduler->address());
        Warm(*stub);
        ready.DecrementCount();
        go.WaitForNotification();
        for (int k = 0; k < flags.runs_per_client; ++k) {
          const absl::Time start = absl::Now();
          absl::StatusOr<v1::Run> run =
              Submit(*stub, spec, absl::StrCat("round", round, "-client", c, "-", k));
          if (!run.ok()) {
            absl::MutexLock lock(&error_mu);
            if (error.ok()) error = Annotate(run.status(), "SubmitRun");
            return;
          }
          log.Add(absl::Now() - start);
          record(run->run_id());
        }
      });
    }
    ready.Wait();
    Getters getters(scheduler->address(), flags.get_clients, GetInterval(flags), pick);
    ASSIGN_OR_RETURN(const ProcessSample scheduler_before, SampleProcess(scheduler->pid()));
    ASSIGN_OR_RETURN(const ProcessSample clients_before, SampleProcess(getpid()));
    const absl::Time start = absl::Now();
    go.Notify();
    for (std::thread& thread : threads) thread.join();
    const absl::Duration elapsed = absl::Now() - start;
    ASSIGN_OR_RETURN(const ProcessSample scheduler_after, SampleProcess(scheduler->pid()));
    ASSIGN_OR_RETURN(const ProcessSample clients_after, SampleProcess(getpid()));
    ASSIGN_OR_RETURN(const std::vector<double> gets, getters.Finish());
    RETURN_IF_ERROR(error);
    const std::vector<double> submits = log.Take();
    result.submit = LatencySummary::Of(submits);
    const double count = static_cast<double>(submits.size());
    result.submits_per_second = count / absl::ToDoubleSeconds(elapsed);
    result.scheduler_ms_per_submit =
        1e3 * (scheduler_after.cpu_seconds - scheduler_before.cpu_seconds) / count;
    result.clients_ms_per_submit =
        1e3 * (clients_after.cpu_seconds - clients_before.cpu_seconds) / count;
    result.get_during = LatencySummary::Of(gets);
  }
  result.runs = static_cast<int64_t>(run_ids.size());

  // Every run pending: what the drivers' polling costs, then GetRun alone.
  absl::SleepFor(absl::Seconds(2));
  ASSIGN_OR_RETURN(const CpuWindow pending,
                   MeasureCpu(*scheduler, absl::Seconds(flags.cpu_window_s)));
  {
    Getters getters(scheduler->address(), flags.get_clients, GetInterval(flags), pick);
    absl::SleepFor(absl::Seconds(3));
    ASSIGN_OR_RETURN(const std::vector<double> gets, getters.Finish());
    result.get_after = LatencySummary::Of(gets);
  }
  // Still pending, all of them.
  {
    std::unique_ptr<v1::Scheduler::Stub> stub = Connect(scheduler->address());
    ASSIGN_OR_RETURN(const v1::Run last, Get(*stub, run_ids.back()));
    if (last.state() != v1::RUN_STATE_PENDING) {
      return absl::InternalError(absl::StrCat(
          "run ", last.run_id(), " is ", v1::RunState_Name(last.state()), ": ", last.message()));
    }
  }
  result.idle_cores = idle.cores;
  result.idle_threads = idle.threads;
  result.idle_rss_mib = idle.rss_mib;
  result.idle_log_lines_per_s = idle.log_lines_per_s;
  result.pending_cores = pending.cores;
  result.pending_threads = pending.threads;
  result.pending_rss_mib = pending.rss_mib;
  result.pending_log_lines_per_s = pending.log_lines_per_s;
  return result;
}

absl::Status MeasureSubmit(const Flags& flags, const std::string& root) {
  absl::PrintF(
      "== submit: %d clients x %d runs (plus %d by one client first), %d GetRun clients beside "
      "them (%s); datamixer 127.0.0.1:1 (runs stay PENDING)\n",
      flags.clients, flags.runs_per_client, flags.serial_submits, flags.get_clients,
      flags.get_rate > 0 ? absl::StrFormat("%.0f calls/s together", flags.get_rate)
                         : std::string("no pause between calls"));
  std::vector<SubmitRound> rounds;
  for (int r = 0; r < flags.submit_rounds; ++r) {
    const std::string dir = absl::StrCat(root, "/submit-", r);
    ASSIGN_OR_RETURN(const OtherProcesses others, OtherProcesses::Start());
    ASSIGN_OR_RETURN(SubmitRound round, RunSubmitRound(flags, r, dir));
    ASSIGN_OR_RETURN(round.other_cores, others.Cores());
    absl::PrintF(
        "round %d: 1 client: SubmitRun %s\n"
        "  %d clients: SubmitRun %s; %.0f submits/s; GetRun meanwhile %s; CPU per submission: "
        "scheduler %.3f ms, clients %.3f ms\n"
        "  %d runs pending: GetRun %s\n"
        "  scheduler: idle %.3f cores, %d threads, %.0f MiB, %.1f log lines/s; with %d runs "
        "pending %.3f cores, %d threads, %.0f MiB, %.1f log lines/s\n"
        "  other processes: %.2f cores over the round\n",
        r + 1, round.serial.ToString(), flags.clients, round.submit.ToString(),
        round.submits_per_second, round.get_during.ToString(), round.scheduler_ms_per_submit,
        round.clients_ms_per_submit, round.runs, round.get_after.ToString(), round.idle_cores,
        round.idle_threads, round.idle_rss_mib, round.idle_log_lines_per_s, round.runs,
        round.pending_cores, round.pending_threads, round.pending_rss_mib,
        round.pending_log_lines_per_s, round.other_cores);
    std::fflush(stdout);
    rounds.push_back(round);
    std::filesystem::remove_all(dir);
  }
  auto median = [&](auto field) {
    std::vector<double> values;
    for (const SubmitRound& round : rounds) values.push_back(field(round));
    return Median(values);
  };
  absl::PrintF(
      "median of %d rounds: 1 client: SubmitRun p50 %.1f ms, p99 %.1f ms\n"
      "  %d clients: SubmitRun p50 %.1f ms, p99 %.1f ms, max %.1f ms; %.0f submits/s; GetRun "
      "meanwhile p50 %.1f ms, p99 %.1f ms; CPU per submission: scheduler %.3f ms, clients %.3f "
      "ms\n"
      "  with %.0f runs pending: GetRun p50 %.1f ms, p99 %.1f ms; scheduler %.3f cores (idle "
      "%.3f), %.0f threads (idle %.0f), %.0f MiB (idle %.0f), %.1f log lines/s (idle %.1f)\n",
      flags.submit_rounds, median([](auto& r) { return r.serial.p50_ms; }),
      median([](auto& r) { return r.serial.p99_ms; }), flags.clients,
      median([](auto& r) { return r.submit.p50_ms; }),
      median([](auto& r) { return r.submit.p99_ms; }),
      median([](auto& r) { return r.submit.max_ms; }),
      median([](auto& r) { return r.submits_per_second; }),
      median([](auto& r) { return r.get_during.p50_ms; }),
      median([](auto& r) { return r.get_during.p99_ms; }),
      median([](auto& r) { return r.scheduler_ms_per_submit; }),
      median([](auto& r) { return r.clients_ms_per_submit; }),
      median([](auto& r) { return static_cast<double>(r.runs); }),
      median([](auto& r) { return r.get_after.p50_ms; }),
      median([](auto& r) { return r.get_after.p99_ms; }),
      median([](auto& r) { return r.pending_cores; }), median([](auto& r) { return r.idle_cores; }),
      median([](auto& r) { return static_cast<double>(r.pending_threads); }),
      median([](auto& r) { return static_cast<double>(r.idle_threads); }),
      median([](auto& r) { return r.pending_rss_mib; }),
      median([](auto& r) { return r.idle_rss_mib; }),
      median([](auto& r) { return r.pending_log_lines_per_s; }),
      median([](auto& r) { return r.idle_log_lines_per_s; }));
  std::fflush(stdout);
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------------------
// recovery

struct RecoveryRound {
  double kill_to_lost_s = 0;
  double lost_to_running_s = 0;  // backoff, plan, the new attempt persisted
  double running_to_step_s = 0;  // the gang's start-up, rendezvous, resume and first step
  double lost_to_step_s = 0;
  int64_t resumed_at_step = 0;  // the first step of the new attempt
  double stop_to_lost_s = 0;
  double silence_at_detection_s = 0;  // since the stopped worker's last heartbeat
  double stop_lost_to_step_s = 0;
  std::string kill_reason, stop_reason;
  double other_cores = 0;  // used by processes not taking part, over the round
};

bool IsEnded(const v1::Run& run) {
  return run.state() == v1::RUN_STATE_SUCCEEDED || run.state() == v1::RUN_STATE_FAILED ||
         run.state() == v1::RUN_STATE_CANCELLED;
}

bool IsMetrics(const v1::RunEvent& event) { return event.has_metrics(); }
bool IsCheckpoint(const v1::RunEvent& event) { return event.has_checkpoint(); }
bool IsWorkerLost(const v1::RunEvent& event) { return event.has_worker_lost(); }
bool IsRunning(const v1::RunEvent& event) {
  return event.has_state_changed() && event.state_changed().to() == v1::RUN_STATE_RUNNING;
}

struct Restart {
  absl::Time lost, running, first_step;
  std::string reason;
  int64_t step = 0;
};

// From a WorkerLost event to the first step of the attempt that follows it.
absl::StatusOr<Restart> AwaitRestart(EventStream& events) {
  constexpr absl::Duration kTimeout = absl::Seconds(300);
  Restart restart;
  ASSIGN_OR_RETURN(const v1::RunEvent lost, events.Next(IsWorkerLost, kTimeout, "WorkerLost"));
  restart.lost = TimeOf(lost.time());
  restart.reason = lost.worker_lost().reason();
  ASSIGN_OR_RETURN(const v1::RunEvent running,
                   events.Next(IsRunning, kTimeout, "the new attempt RUNNING"));
  restart.running = TimeOf(running.time());
  ASSIGN_OR_RETURN(const v1::RunEvent step,
                   events.Next(IsMetrics, kTimeout, "the new attempt's first step"));
  restart.first_step = TimeOf(step.time());
  restart.step = step.metrics().step();
  return restart;
}

absl::StatusOr<RecoveryRound> RunRecoveryRound(const Flags& flags, const std::string& dir,
                                               const std::string& datamixer) {
  RecoveryRound result;
  ASSIGN_OR_RETURN(std::unique_ptr<SchedulerProcess> scheduler,
                   SchedulerProcess::Start(flags, dir + "/scheduler", datamixer));
  // Enough steps that the run is still training when the measurements are done; it is
  // cancelled then.
  ASSIGN_OR_RETURN(const v1::RunSpec spec, Spec({"recovery", testing::kTinyModelYaml, 64, 256,
                                                 20000, 20, flags.heartbeat_timeout_s},
                                                dir + "/checkpoints"));
  std::unique_ptr<v1::Scheduler::Stub> stub = Connect(scheduler->address());
  ASSIGN_OR_RETURN(const v1::Run run, Submit(*stub, spec, ""));
  auto events = std::make_unique<EventStream>(scheduler->address(), run.run_id());
  constexpr absl::Duration kTimeout = absl::Seconds(300);

  // A worker killed.
  RETURN_IF_ERROR(events->Next(IsCheckpoint, kTimeout, "the first checkpoint").status());
  ASSIGN_OR_RETURN(const std::vector<pid_t> first, scheduler->AwaitWorkerPids(1, 2, kTimeout));
  const absl::Time killed = absl::Now();
  if (kill(first[1], SIGKILL) != 0) return absl::InternalError("kill rank 1");
  ASSIGN_OR_RETURN(const Restart after_kill, AwaitRestart(*events));
  result.kill_reason = after_kill.reason;
  result.kill_to_lost_s = absl::ToDoubleSeconds(after_kill.lost - killed);
  result.lost_to_running_s = absl::ToDoubleSeconds(after_kill.running - after_kill.lost);
  result.running_to_step_s = absl::ToDoubleSeconds(after_kill.first_step - after_kill.running);
  result.lost_to_step_s = absl::ToDoubleSeconds(after_kill.first_step - after_kill.lost);
  result.resumed_at_step = after_kill.step;

  // A worker stopped: only its missing heartbeats tell.
  RETURN_IF_ERROR(
      events->Next(IsCheckpoint, kTimeout, "the second attempt's first checkpoint").status());
  ASSIGN_OR_RETURN(const std::vector<pid_t> second, scheduler->AwaitWorkerPids(2, 2, kTimeout));
  const absl::Time stopped = absl::Now();
  if (kill(second[0], SIGSTOP) != 0) return absl::InternalError("stop rank 0");
  ASSIGN_OR_RETURN(const Restart after_stop, AwaitRestart(*events));
  result.stop_reason = after_stop.reason;
  result.stop_to_lost_s = absl::ToDoubleSeconds(after_stop.lost - stopped);
  // "rank 0: no heartbeat for 5.0043s (timeout 5s)"
  absl::string_view silence = after_stop.reason;
  absl::Duration silent;
  if (const size_t at = silence.find("no heartbeat for "); at != absl::string_view::npos) {
    silence.remove_prefix(at + strlen("no heartbeat for "));
    if (absl::ParseDuration(silence.substr(0, silence.find(' ')), &silent)) {
      result.silence_at_detection_s = absl::ToDoubleSeconds(silent);
    }
  }
  result.stop_lost_to_step_s = absl::ToDoubleSeconds(after_stop.first_step - after_stop.lost);

  // The run's driver stops the gang; the scheduler's destructor kills whatever is left.
  RETURN_IF_ERROR(Cancel(*stub, run.run_id()));
  return result;
}

absl::Status MeasureRecovery(const Flags& flags, const std::string& root,
                             const Service& datamixer) {
  absl::PrintF(
      "== recovery: tiny Llama on dp 2; heartbeat every %d ms, timeout %d s; restart backoff "
      "%d ms\n",
      flags.heartbeat_interval_ms, flags.heartbeat_timeout_s, flags.restart_backoff_ms);
  std::vector<RecoveryRound> rounds;
  for (int r = 0; r < flags.recovery_rounds; ++r) {
    const std::string dir = absl::StrCat(root, "/recovery-", r);
    ASSIGN_OR_RETURN(const OtherProcesses others,
                     OtherProcesses::Start({datamixer.process->pid()}));
    ASSIGN_OR_RETURN(RecoveryRound round, RunRecoveryRound(flags, dir, datamixer.address));
    ASSIGN_OR_RETURN(round.other_cores, others.Cores());
    absl::PrintF(
        "round %d: SIGKILL rank 1: WorkerLost %.3f s after the kill (\"%s\"); WorkerLost -> "
        "first step of the new attempt %.2f s (-> RUNNING %.2f s, RUNNING -> step %d %.2f s)\n"
        "  SIGSTOP rank 0: WorkerLost %.2f s after the stop, %.3f s after its last heartbeat "
        "(\"%s\"); WorkerLost -> first step %.2f s\n"
        "  other processes: %.2f cores over the round\n",
        r + 1, round.kill_to_lost_s, round.kill_reason, round.lost_to_step_s,
        round.lost_to_running_s, round.resumed_at_step, round.running_to_step_s,
        round.stop_to_lost_s, round.silence_at_detection_s, round.stop_reason,
        round.stop_lost_to_step_s, round.other_cores);
    std::fflush(stdout);
    rounds.push_back(round);
    std::filesystem::remove_all(dir);
  }
  auto median = [&](auto field) {
    std::vector<double> values;
    for (const RecoveryRound& round : rounds) values.push_back(field(round));
    return Median(values);
  };
  absl::PrintF(
      "median of %d rounds: killed worker: detected in %.3f s, WorkerLost -> first new step "
      "%.2f s (-> RUNNING %.2f s, RUNNING -> step %.2f s); stopped worker: detected %.2f s "
      "after the stop, %.3f s after its last heartbeat (timeout %d s), WorkerLost -> first new "
      "step %.2f s\n",
      flags.recovery_rounds, median([](auto& r) { return r.kill_to_lost_s; }),
      median([](auto& r) { return r.lost_to_step_s; }),
      median([](auto& r) { return r.lost_to_running_s; }),
      median([](auto& r) { return r.running_to_step_s; }),
      median([](auto& r) { return r.stop_to_lost_s; }),
      median([](auto& r) { return r.silence_at_detection_s; }), flags.heartbeat_timeout_s,
      median([](auto& r) { return r.stop_lost_to_step_s; }));
  std::fflush(stdout);
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------------------
// watch

// `count` WatchRun streams on one run from `after_sequence` on, each a client thread with its
// own channel reading every event, until the run ends or they are cancelled.
class Watchers {
 public:
  Watchers(const std::string& address, const std::string& run_id, int count, int64_t after_sequence)
      : last_(count, after_sequence) {
    absl::BlockingCounter started(count);
    for (int w = 0; w < count; ++w) {
      contexts_.push_back(std::make_unique<grpc::ClientContext>());
    }
    for (int w = 0; w < count; ++w) {
      threads_.emplace_back([this, address, run_id, after_sequence, w, &started] {
        std::unique_ptr<v1::Scheduler::Stub> stub = Connect(address);
        v1::WatchRunRequest request;
        request.set_run_id(run_id);
        request.set_after_sequence(after_sequence);
        std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader =
            stub->WatchRun(contexts_[w].get(), request);
        started.DecrementCount();
        v1::RunEvent event;
        while (reader->Read(&event)) last_[w] = event.sequence();
        const grpc::Status status = reader->Finish();
        if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
          absl::MutexLock lock(&mu_);
          if (error_.ok()) error_ = Annotate(FromGrpcStatus(status), "a WatchRun stream");
        }
      });
    }
    started.Wait();
  }
  ~Watchers() { Stop().IgnoreError(); }

  // Cancels the streams; the sequence of the last event every stream has read.
  absl::StatusOr<int64_t> Stop() {
    for (auto& context : contexts_) context->TryCancel();
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(error_);
    return last_.empty() ? 0 : *std::min_element(last_.begin(), last_.end());
  }

 private:
  std::vector<int64_t> last_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// CPU seconds: the machine's, and those of the processes taking part.
struct CpuAccount {
  double machine = 0;
  double scheduler = 0;
  double bench = 0;    // this process: the stream readers
  double workers = 0;  // the trainer workers and the datamixer
};

absl::StatusOr<CpuAccount> SampleCpu(pid_t scheduler, const std::vector<pid_t>& others) {
  CpuAccount account;
  ASSIGN_OR_RETURN(account.machine, MachineCpuSeconds());
  ASSIGN_OR_RETURN(const ProcessSample s, SampleProcess(scheduler));
  account.scheduler = s.cpu_seconds;
  ASSIGN_OR_RETURN(const ProcessSample b, SampleProcess(getpid()));
  account.bench = b.cpu_seconds;
  for (pid_t pid : others) {
    ASSIGN_OR_RETURN(const ProcessSample o, SampleProcess(pid));
    account.workers += o.cpu_seconds;
  }
  return account;
}

// A stretch of the run with or without the streams attached.
struct Window {
  bool streams = false;
  bool disturbed = false;  // other processes used more than --max_other_cores
  absl::Time start, end;
  CpuAccount cpu;  // used during the window
  // From the steps that began and ended inside the window, after the settling time.
  int steps = 0;
  double step_tokens_per_s = 0;  // median of the trainer's per-step figures
  double wall_tokens_per_s = 0;  // batch positions over the time between step timestamps
};

struct WatchRound {
  std::vector<Window> windows;
  // A window with the streams / the mean of the windows either side, for each such window.
  std::vector<double> step_ratios, wall_ratios;
  int disturbed = 0;  // windows with the streams left out: another process ran beside
};

absl::StatusOr<WatchRound> RunWatchRound(const Flags& flags, const std::string& dir,
                                         const Service& datamixer, bool streams_first) {
  WatchRound result;
  ASSIGN_OR_RETURN(std::unique_ptr<SchedulerProcess> scheduler,
                   SchedulerProcess::Start(flags, dir + "/scheduler", datamixer.address));
  ASSIGN_OR_RETURN(const v1::RunSpec spec, Spec({"watch", kSmallModelYaml, 256, 2048,
                                                 flags.watch_steps, 0, flags.heartbeat_timeout_s},
                                                dir + "/checkpoints"));
  std::unique_ptr<v1::Scheduler::Stub> stub = Connect(scheduler->address());
  ASSIGN_OR_RETURN(const v1::Run run, Submit(*stub, spec, ""));
  // Training, past its first steps.
  const absl::Time deadline = absl::Now() + absl::Seconds(300);
  while (true) {
    ASSIGN_OR_RETURN(const v1::Run now, Get(*stub, run.run_id()));
    if (now.state() == v1::RUN_STATE_RUNNING && now.step() >= flags.watch_warmup_steps) break;
    if (IsEnded(now) || absl::Now() > deadline) {
      return absl::InternalError(absl::StrCat("run ", run.run_id(), " did not start training: ",
                                              v1::RunState_Name(now.state()), ": ", now.message()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSIGN_OR_RETURN(std::vector<pid_t> others, scheduler->AwaitWorkerPids(1, 2, absl::Seconds(10)));
  others.push_back(datamixer.process->pid());

  // Windows in turn until the run ends; the streams resume after the last event they read, as
  // `prolongctl run watch` does when its stream breaks.
  int64_t resume_after = 0;
  bool ended = false;
  for (int w = 0; !ended; ++w) {
    Window window;
    window.streams = (w % 2 == 0) == streams_first;
    ASSIGN_OR_RETURN(const CpuAccount before, SampleCpu(scheduler->pid(), others));
    window.start = absl::Now();
    std::unique_ptr<Watchers> watchers;
    if (window.streams) {
      watchers = std::make_unique<Watchers>(scheduler->address(), run.run_id(), flags.streams,
                                            resume_after);
    }
    while (absl::Now() - window.start < absl::Seconds(flags.window_s)) {
      absl::SleepFor(absl::Milliseconds(500));
      ASSIGN_OR_RETURN(const v1::Run now, Get(*stub, run.run_id()));
      if (IsEnded(now)) {
        if (now.state() != v1::RUN_STATE_SUCCEEDED || now.restarts() > 0) {
          return absl::InternalError(absl::StrCat(
              "run ", run.run_id(), ": ", v1::RunState_Name(now.state()), ": ", now.message()));
        }
        ended = true;
        break;
      }
    }
    window.end = absl::Now();
    if (watchers != nullptr) {
      ASSIGN_OR_RETURN(resume_after, watchers->Stop());
    }
    if (!ended) {
      ASSIGN_OR_RETURN(const CpuAccount after, SampleCpu(scheduler->pid(), others));
      window.cpu = {after.machine - before.machine, after.scheduler - before.scheduler,
                    after.bench - before.bench, after.workers - before.workers};
      const CpuAccount& cpu = window.cpu;
      window.disturbed = (cpu.machine - cpu.scheduler - cpu.bench - cpu.workers) /
                             absl::ToDoubleSeconds(window.end - window.start) >
                         flags.max_other_cores;
    }
    result.windows.push_back(window);
  }
  if (!ended) return absl::InternalError("the run did not end");
  // The window the run ended in is cut short (and its end saw the last checkpoint): left out.
  result.windows.pop_back();

  ASSIGN_OR_RETURN(const std::vector<v1::RunEvent> events,
                   AllEvents(scheduler->address(), run.run_id()));
  std::vector<v1::StepMetrics> steps;
  for (const v1::RunEvent& event : events) {
    if (event.has_metrics()) steps.push_back(event.metrics());
  }
  for (Window& window : result.windows) {
    const absl::Time from = window.start + absl::Seconds(flags.settle_s);
    std::vector<double> per_step;
    double positions = 0, seconds = 0;
    for (size_t s = 1; s < steps.size(); ++s) {
      const absl::Time began = TimeOf(steps[s - 1].time()), done = TimeOf(steps[s].time());
      if (began < from || done > window.end) continue;
      per_step.push_back(steps[s].tokens_per_second());
      positions += static_cast<double>(steps[s].tokens_seen() - steps[s - 1].tokens_seen());
      seconds += absl::ToDoubleSeconds(done - began);
    }
    window.steps = static_cast<int>(per_step.size());
    window.step_tokens_per_s = Median(per_step);
    window.wall_tokens_per_s = seconds > 0 ? positions / seconds : NAN;
  }
  // Each window with the streams against the mean of the windows either side of it, which
  // cancels a drift of the machine's speed that is slow against a window.
  for (size_t w = 1; w + 1 < result.windows.size(); ++w) {
    const Window& with = result.windows[w];
    const Window& before = result.windows[w - 1];
    const Window& after = result.windows[w + 1];
    if (!with.streams || with.steps == 0 || before.steps == 0 || after.steps == 0) continue;
    if (with.disturbed || before.disturbed || after.disturbed) {
      ++result.disturbed;
      continue;
    }
    result.step_ratios.push_back(with.step_tokens_per_s /
                                 ((before.step_tokens_per_s + after.step_tokens_per_s) / 2));
    result.wall_ratios.push_back(with.wall_tokens_per_s /
                                 ((before.wall_tokens_per_s + after.wall_tokens_per_s) / 2));
  }
  return result;
}

absl::Status MeasureWatch(const Flags& flags, const std::string& root, const Service& datamixer) {
  absl::PrintF(
      "== watch: Llama hidden 128 x 4 layers on dp 2, 2048 tokens a step (8 x 256), %d steps a "
      "run; %d s windows without and with %d WatchRun streams in turn (the first %d s of each "
      "not counted)\n",
      flags.watch_steps, flags.window_s, flags.streams, flags.settle_s);
  std::vector<double> step_ratios, wall_ratios;
  std::vector<double> without_step, with_step, without_wall, with_wall;
  CpuAccount without_cpu, with_cpu;
  double without_seconds = 0, with_seconds = 0;
  for (int r = 0; r < flags.watch_rounds; ++r) {
    const std::string dir = absl::StrCat(root, "/watch-", r);
    const bool streams_first = r % 2 == 1;
    ASSIGN_OR_RETURN(const WatchRound round, RunWatchRound(flags, dir, datamixer, streams_first));
    std::filesystem::remove_all(dir);
    std::string line =
        absl::StrFormat("round %d (%s first):", r + 1, streams_first ? "streams" : "no streams");
    double foreign_max = 0;
    for (const Window& window : round.windows) {
      const double seconds = absl::ToDoubleSeconds(window.end - window.start);
      const CpuAccount& cpu = window.cpu;
      foreign_max =
          std::max(foreign_max, (cpu.machine - cpu.scheduler - cpu.bench - cpu.workers) / seconds);
      (window.streams ? with_step : without_step).push_back(window.step_tokens_per_s);
      (window.streams ? with_wall : without_wall).push_back(window.wall_tokens_per_s);
      CpuAccount& total = window.streams ? with_cpu : without_cpu;
      total.machine += cpu.machine;
      total.scheduler += cpu.scheduler;
      total.bench += cpu.bench;
      total.workers += cpu.workers;
      (window.streams ? with_seconds : without_seconds) += seconds;
      absl::StrAppendFormat(&line, " %s %.0f/%.0f (%d steps%s);", window.streams ? "with" : "w/o",
                            window.step_tokens_per_s, window.wall_tokens_per_s, window.steps,
                            window.disturbed ? ", disturbed" : "");
    }
    absl::StrAppendFormat(&line,
                          " ratios per step %s, wall %s; other processes at most %.2f "
                          "cores in a window (%d ratios left out)\n",
                          absl::StrJoin(round.step_ratios, " ",
                                        [](std::string* out, double ratio) {
                                          absl::StrAppendFormat(out, "%.3f", ratio);
                                        }),
                          absl::StrJoin(round.wall_ratios, " ",
                                        [](std::string* out, double ratio) {
                                          absl::StrAppendFormat(out, "%.3f", ratio);
                                        }),
                          foreign_max, round.disturbed);
    absl::PrintF("%s", line);
    std::fflush(stdout);
    step_ratios.insert(step_ratios.end(), round.step_ratios.begin(), round.step_ratios.end());
    wall_ratios.insert(wall_ratios.end(), round.wall_ratios.begin(), round.wall_ratios.end());
  }
  if (step_ratios.empty()) return absl::InternalError("no window with streams had steps");
  absl::PrintF(
      "median over %d windows each (tokens/s per step / wall): without streams %.0f / %.0f, "
      "with %d streams %.0f / %.0f\n"
      "median of %d ratios (a window with / the mean of those without either side): per step "
      "%.3f (min %.3f, max %.3f), wall "
      "%.3f (min %.3f, max %.3f)\n"
      "cores used, without / with streams: scheduler %.3f / %.3f, stream readers (this "
      "process) %.3f / %.3f, workers and datamixer %.3f / %.3f, whole machine %.3f / %.3f\n",
      static_cast<int>(without_step.size()), Median(without_step), Median(without_wall),
      flags.streams, Median(with_step), Median(with_wall), static_cast<int>(step_ratios.size()),
      Median(step_ratios), *std::min_element(step_ratios.begin(), step_ratios.end()),
      *std::max_element(step_ratios.begin(), step_ratios.end()), Median(wall_ratios),
      *std::min_element(wall_ratios.begin(), wall_ratios.end()),
      *std::max_element(wall_ratios.begin(), wall_ratios.end()),
      without_cpu.scheduler / without_seconds, with_cpu.scheduler / with_seconds,
      without_cpu.bench / without_seconds, with_cpu.bench / with_seconds,
      without_cpu.workers / without_seconds, with_cpu.workers / with_seconds,
      without_cpu.machine / without_seconds, with_cpu.machine / with_seconds);
  std::fflush(stdout);
  return absl::OkStatus();
}

// ------------------------------------------------------------------------------------------------

absl::Status Run(const Flags& flags, const std::string& root) {
  if (flags.serial_submits < 1 || flags.clients < 1 || flags.runs_per_client < 1 ||
      flags.get_rate < 0 || flags.window_s <= flags.settle_s ||
      flags.watch_steps <= flags.watch_warmup_steps) {
    return absl::InvalidArgumentError(
        "--serial_submits, --clients and --runs_per_client must be at least 1, --get_rate at "
        "least 0, --window_s above --settle_s and --watch_steps above --watch_warmup_steps");
  }
  for (const char* binary :
       {testing::kSchedulerBinary, testing::kDatamixerBinary, testing::kTrainerBinary}) {
    const std::string path = absl::StrCat(flags.bin, "/", binary);
    if (access(path.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("--bin: ", path, " is not an executable"));
    }
  }
  auto wants = [&](const std::string& name) {
    return std::find(flags.measure.begin(), flags.measure.end(), name) != flags.measure.end();
  };
  if (wants("submit")) RETURN_IF_ERROR(MeasureSubmit(flags, root));
  if (!wants("recovery") && !wants("watch")) return absl::OkStatus();
  RETURN_IF_ERROR(testing::WriteLearnableCorpus(root + "/store"));
  ASSIGN_OR_RETURN(Service datamixer,
                   StartService({absl::StrCat(flags.bin, "/", testing::kDatamixerBinary),
                                 "--store=" + root + "/store", "--address=127.0.0.1:0",
                                 "--metrics-address=off"}));
  absl::Status status;
  if (wants("recovery")) status = MeasureRecovery(flags, root, datamixer);
  if (status.ok() && wants("watch")) status = MeasureWatch(flags, root, datamixer);
  Stop(*datamixer.process, absl::Seconds(10));
  return status;
}

}  // namespace
}  // namespace prolong

int main(int argc, char** argv) {
  prolong::Flags flags;
  CLI::App app(
      "The scheduler under load: SubmitRun and GetRun latency with many clients, the time from "
      "a lost worker to the restarted gang's first step, and training throughput with WatchRun "
      "streams attached.");
  prolong::ConfigureCli(app);
  app.add_option("--bin", flags.bin,
                 "Where the service binaries are: services/{scheduler,datamixer,trainer}/...")
      ->capture_default_str();
  app.add_option("--measure", flags.measure, "Which measurements: submit, recovery, watch")
      ->delimiter(',')
      ->check(CLI::IsMember({"submit", "recovery", "watch"}))
      ->capture_default_str();
  app.add_option("--submit_rounds", flags.submit_rounds, "submit: rounds (a fresh scheduler each)")
      ->capture_default_str();
  app.add_option("--clients", flags.clients, "submit: concurrent SubmitRun clients")
      ->capture_default_str();
  app.add_option("--runs_per_client", flags.runs_per_client, "submit: runs each client submits")
      ->capture_default_str();
  app.add_option("--get_clients", flags.get_clients, "submit: GetRun clients beside them")
      ->capture_default_str();
  app.add_option("--get_rate", flags.get_rate,
                 "submit: GetRun calls per second, all GetRun clients together; 0: each calls "
                 "again as soon as it has its answer")
      ->capture_default_str();
  app.add_option("--serial_submits", flags.serial_submits,
                 "submit: runs one client submits alone first")
      ->capture_default_str();
  app.add_option("--cpu_window_s", flags.cpu_window_s,
                 "submit: seconds over which the scheduler's CPU use is measured")
      ->capture_default_str();
  app.add_option("--recovery_rounds", flags.recovery_rounds, "recovery: rounds")
      ->capture_default_str();
  app.add_option("--heartbeat_timeout_s", flags.heartbeat_timeout_s,
                 "The runs' fault.heartbeat_timeout")
      ->capture_default_str();
  app.add_option("--heartbeat_interval_ms", flags.heartbeat_interval_ms,
                 "The scheduler's --heartbeat-interval-ms")
      ->capture_default_str();
  app.add_option("--restart_backoff_ms", flags.restart_backoff_ms,
                 "The scheduler's --restart-backoff-ms")
      ->capture_default_str();
  app.add_option("--watch_rounds", flags.watch_rounds,
                 "watch: rounds (a run each, its windows alternating)")
      ->capture_default_str();
  app.add_option("--window_s", flags.window_s,
                 "watch: seconds of each window with or without the streams")
      ->capture_default_str();
  app.add_option("--max_other_cores", flags.max_other_cores,
                 "watch: a window in which processes not taking part used more CPU is left out, "
                 "with the windows either side")
      ->capture_default_str();
  app.add_option("--settle_s", flags.settle_s,
                 "watch: seconds at the start of each window whose steps are not counted")
      ->capture_default_str();
  app.add_option("--streams", flags.streams, "watch: WatchRun streams in the loaded arm")
      ->capture_default_str();
  app.add_option("--watch_steps", flags.watch_steps, "watch: training steps of each run")
      ->capture_default_str();
  app.add_option("--watch_warmup_steps", flags.watch_warmup_steps,
                 "watch: steps trained before the first window")
      ->capture_default_str();
  if (auto exit_code = prolong::ParseCommandLine(app, argc, argv)) return *exit_code;

  // Everything this run writes, the children's output files included, goes under one directory.
  const char* base = std::getenv("TEST_TMPDIR");
  std::string root = absl::StrCat(base != nullptr ? base : "/tmp", "/scheduler-load-XXXXXX");
  if (mkdtemp(root.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  setenv("TEST_TMPDIR", root.c_str(), 1);
  prolong::CleanUpOnSignal(root);
  const absl::Status status = prolong::Run(flags, root);
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
  if (!status.ok()) {
    std::fprintf(stderr, "scheduler_load: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
