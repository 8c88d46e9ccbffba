#include "services/prolongctl/run_command.h"

#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/cli.h"
#include "common/proto_file.h"
#include "common/security.h"
#include "google/protobuf/util/json_util.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "scheduler/run_spec_check.h"
#include "services/prolongctl/run_evaluations.h"

namespace prolong::ctl {
namespace {

struct RunFlags {
  std::string scheduler = "127.0.0.1:7400";
  std::string spec_path;
  bool dry_run = false;
  std::string request_id;
  double tokens_per_second_per_gpu = 0;
  std::string run_id;
  std::vector<std::string> states;
  bool json = false;
  std::string reason;
  int rank = 0;
  int64_t attempt = 0;
  bool follow = false;
  ClientSecurityFiles security_files;
  ClientSecurity security;  // read from security_files before the command runs
};

std::unique_ptr<v1::Scheduler::Stub> Connect(const RunFlags& flags) {
  return v1::Scheduler::NewStub(OpenChannel(flags.scheduler, flags.security));
}

// Reads the TLS and token files, then runs the command.
int Secured(RunFlags& flags, int (*command)(const RunFlags&)) {
  absl::StatusOr<ClientSecurity> security = LoadClientSecurity(flags.security_files);
  if (!security.ok()) {
    std::cerr << "prolongctl run: " << security.status().message() << std::endl;
    return 1;
  }
  flags.security = *std::move(security);
  return command(flags);
}

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

// One line per problem (the scheduler joins a spec's problems with "; ").
int Fail(const RunFlags& flags, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    std::cerr << "prolongctl run: scheduler " << flags.scheduler
              << " unreachable: " << status.error_message() << std::endl;
    return 2;
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::cerr << "prolongctl run: " << status.error_message()
              << "; give --token-file or set PROLONG_TOKEN_FILE" << std::endl;
    return 1;
  }
  const std::vector<std::string> problems = absl::StrSplit(status.error_message(), "; ");
  if (problems.size() > 1) {
    std::cerr << "prolongctl run: " << problems.size() << " problems:" << std::endl;
    for (const std::string& problem : problems) std::cerr << "  " << problem << std::endl;
  } else {
    std::cerr << "prolongctl run: " << status.error_message() << std::endl;
  }
  return 1;
}

std::string StateName(v1::RunState state) {
  std::string name = v1::RunState_Name(state);
  return name.substr(std::string("RUN_STATE_").size());
}

std::string Duration(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(seconds);
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m", s % 60, "s");
  if (s < 172800) return absl::StrCat(s / 3600, "h", (s % 3600) / 60, "m");
  return absl::StrCat(s / 86400, "d", (s % 86400) / 3600, "h");
}

absl::Time TimeOf(const google::protobuf::Timestamp& time) {
  return absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
}

// "stage 2/3 (long-512k) step 40/100, loss 2.31, 51200 tokens/s, MFU 48.0%, ETA 3m10s".
std::string Progress(const v1::Run& run) {
  if (run.spec().stages_size() == 0) return "";
  const int k = std::min(run.stage_index(), run.spec().stages_size() - 1);
  std::string text = absl::StrFormat("stage %d/%d (%s) step %d/%d", k + 1, run.spec().stages_size(),
                                     run.spec().stages(k).name(), run.step(), run.stage_steps());
  const v1::StepMetrics& metrics = run.latest_metrics();
  if (run.has_latest_metrics() && metrics.stage() == run.spec().stages(k).name()) {
    absl::StrAppendFormat(&text, ", loss %.4f, %.0f tokens/s", metrics.loss(),
                          metrics.tokens_per_second());
    if (metrics.mfu() > 0) absl::StrAppendFormat(&text, ", MFU %.1f%%", 100 * metrics.mfu());
    const int64_t tokens_per_step = run.spec().stages(k).batch_tokens();
    if (metrics.tokens_per_second() > 0 && run.stage_steps() > run.step()) {
      const double seconds = static_cast<double>(run.stage_steps() - run.step()) * tokens_per_step /
                             metrics.tokens_per_second();
      text += ", stage ETA " + Duration(seconds);
    }
  }
  return text;
}

void PrintPlans(const v1::Run& run, double tokens_per_second_per_gpu) {
  double total_seconds = 0;
  for (int k = 0; k < run.stage_plans_size(); ++k) {
    const v1::StageSpec& stage = run.spec().stages(k);
    const v1::StagePlan& plan = run.stage_plans(k);
    const scheduler::Layout layout = scheduler::StageLayoutOf(run.spec(), k);
    const int dp = layout.dp, cp = layout.cp;
    const int64_t tokens = plan.steps() * plan.sequences_per_batch() * plan.seq_len();
    std::cout << absl::StrFormat(
        "stage %d/%d %s: %d steps of %d sequences x %d tokens = %d tokens; %d ranks (dp %d x cp "
        "%d); plan %s\n",
        k + 1, run.spec().stages_size(), stage.name(), plan.steps(), plan.sequences_per_batch(),
        plan.seq_len(), tokens, dp * cp, dp, cp, plan.plan_id());
    for (const v1::DomainPlan& domain : plan.domains()) {
      std::cout << absl::StrFormat(
          "  %-24s %12d tokens  %6.2f%%  %.3f epochs\n", domain.domain(), domain.tokens(),
          100.0 * domain.tokens() / std::max<int64_t>(1, tokens), domain.epochs());
    }
    if (tokens_per_second_per_gpu > 0) {
      const double seconds = tokens / (tokens_per_second_per_gpu * dp * cp);
      total_seconds += seconds;
      std::cout << "  estimated time: " << Duration(seconds) << " at " << tokens_per_second_per_gpu
                << " tokens/s per GPU\n";
    }
  }
  if (tokens_per_second_per_gpu > 0) {
    std::cout << "estimated total: " << Duration(total_seconds) << "\n";
  }
  std::cout << std::flush;
}

std::string NewRequestId() {
  std::random_device device;
  return absl::StrFormat("%08x%08x%08x", device(), device(), device());
}

int Submit(const RunFlags& flags) {
  v1::SubmitRunRequest request;
  const absl::Status read = ReadProtoFile(flags.spec_path, request.mutable_spec());
  if (!read.ok()) {
    std::cerr << "prolongctl run submit: " << read.message() << std::endl;
    return 1;
  }
  request.set_validate_only(flags.dry_run);
  request.set_request_id(flags.request_id.empty() ? NewRequestId() : flags.request_id);
  auto stub = Connect(flags);
  v1::Run run;
  // A retry after a lost answer reuses the request id, so it cannot submit the run twice.
  grpc::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    grpc::ClientContext context;
    AddCredentials(context, flags.security);
    SetDeadline(context, absl::Minutes(5));
    status = stub->SubmitRun(&context, request, &run);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    absl::SleepFor(absl::Seconds(1));
  }
  if (!status.ok()) return Fail(flags, status);
  if (flags.dry_run) {
    std::cout << "spec " << flags.spec_path << " is valid" << std::endl;
    PrintPlans(run, flags.tokens_per_second_per_gpu);
    return 0;
  }
  std::cout << run.run_id() << std::endl;
  return 0;
}

int List(const RunFlags& flags) {
  v1::ListRunsRequest request;
  for (const std::string& name : flags.states) {
    v1::RunState state;
    if (!v1::RunState_Parse("RUN_STATE_" + absl::AsciiStrToUpper(name), &state)) {
      std::cerr << "prolongctl run list: --state " << name
                << ": not one of pending, running, restarting, succeeded, failed, cancelled"
                << std::endl;
      return 1;
    }
    request.add_states(state);
  }
  auto stub = Connect(flags);
  std::cout << absl::StrFormat("%-32s %-11s %-8s %s\n", "RUN", "STATE", "AGE", "PROGRESS");
  while (true) {
    v1::ListRunsResponse response;
    grpc::ClientContext context;
    AddCredentials(context, flags.security);
    SetDeadline(context, absl::Seconds(30));
    const grpc::Status status = stub->ListRuns(&context, request, &response);
    if (!status.ok()) return Fail(flags, status);
    for (const v1::Run& run : response.runs()) {
      std::string line = absl::StrFormat(
          "%-32s %-11s %-8s %s", run.run_id(), StateName(run.state()),
          Duration(absl::ToDoubleSeconds(absl::Now() - TimeOf(run.create_time()))), Progress(run));
      if (run.has_side_job_of()) {
        absl::StrAppend(&line, "  side job of ", run.side_job_of().run_id());
      }
      std::cout << line << "\n";
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  std::cout << std::flush;
  return 0;
}

void PrintRun(const v1::Run& run) {
  std::cout << "run:      " << run.run_id() << "\n";
  if (run.has_side_job_of()) std::cout << DescribeSideJob(run) << "\n";
  std::cout << "state:    " << StateName(run.state())
            << (run.message().empty() ? "" : ": " + run.message()) << "\n"
            << "progress: " << Progress(run) << "\n"
            << "attempt:  " << run.attempt() << " (restarts " << run.restarts() << " of "
            << run.spec().fault().max_restarts() << ")\n";
  if (!run.checkpoints().empty()) {
    const v1::Checkpoint& newest = *run.checkpoints().rbegin();
    std::cout << "checkpoints: " << run.checkpoints_size() << ", newest " << newest.path() << "\n";
  }
  if (!run.evaluations().empty()) {
    std::cout << "evaluations:\n" << FormatEvaluationTable(run) << FormatEvaluationLines(run);
  }
  std::cout << std::flush;
}

grpc::Status GetRun(v1::Scheduler::Stub& stub, const RunFlags& flags, v1::Run& run) {
  v1::GetRunRequest request;
  request.set_run_id(flags.run_id);
  grpc::ClientContext context;
  AddCredentials(context, flags.security);
  SetDeadline(context, absl::Seconds(30));
  return stub.GetRun(&context, request, &run);
}

int Get(const RunFlags& flags) {
  auto stub = Connect(flags);
  v1::Run run;
  const grpc::Status status = GetRun(*stub, flags, run);
  if (!status.ok()) return Fail(flags, status);
  if (flags.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(run, &json, options);
    std::cout << json << std::flush;
    return 0;
  }
  PrintRun(run);
  return 0;
}

std::string DescribeEvent(const v1::RunEvent& event) {
  const std::string time =
      absl::FormatTime("%H:%M:%S", TimeOf(event.time()), absl::LocalTimeZone());
  switch (event.event_case()) {
    case v1::RunEvent::kStateChanged:
      return absl::StrCat(time, " ", StateName(event.state_changed().to()), ": ",
                          event.state_changed().message());
    case v1::RunEvent::kMetrics: {
      const v1::StepMetrics& m = event.metrics();
      std::string text =
          absl::StrFormat("%s %s step %d loss %.4f lr %.3g tokens/s %.0f", time, m.stage(),
                          m.step(), m.loss(), m.learning_rate(), m.tokens_per_second());
      if (m.mfu() > 0) absl::StrAppendFormat(&text, " MFU %.1f%%", 100 * m.mfu());
      return text;
    }
    case v1::RunEvent::kCheckpoint:
      return absl::StrCat(time, " checkpoint ", event.checkpoint().stage(), " step ",
                          event.checkpoint().step(), ": ", event.checkpoint().path());
    case v1::RunEvent::kWorkerLost:
      return absl::StrCat(time, " worker lost: ", event.worker_lost().reason());
    case v1::RunEvent::kEvaluation:
      return absl::StrCat(time, " ", DescribeEvaluation(event.evaluation()));
    default:
      return absl::StrCat(time, " (an event this prolongctl does not know)");
  }
}

int Watch(const RunFlags& flags) {
  auto stub = Connect(flags);
  int64_t after = 0;
  // The stream is resumed from the last event seen if it breaks (a scheduler restart).
  for (int broken = 0;; ++broken) {
    grpc::ClientContext context;
    AddCredentials(context, flags.security);
    v1::WatchRunRequest request;
    request.set_run_id(flags.run_id);
    request.set_after_sequence(after);
    std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader = stub->WatchRun(&context, request);
    v1::RunEvent event;
    while (reader->Read(&event)) {
      std::cout << DescribeEvent(event) << std::endl;
      after = event.sequence();
    }
    const grpc::Status status = reader->Finish();
    if (status.ok()) break;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || broken == 30) {
      return Fail(flags, status);
    }
    absl::SleepFor(absl::Seconds(1));
  }
  v1::Run run;
  const grpc::Status status = GetRun(*stub, flags, run);
  if (!status.ok()) return Fail(flags, status);
  PrintRun(run);
  return run.state() == v1::RUN_STATE_SUCCEEDED ? 0 : 1;
}

int Cancel(const RunFlags& flags) {
  auto stub = Connect(flags);
  v1::CancelRunRequest request;
  request.set_run_id(flags.run_id);
  request.set_reason(flags.reason);
  v1::Run run;
  grpc::ClientContext context;
  AddCredentials(context, flags.security);
  SetDeadline(context, absl::Seconds(30));
  const grpc::Status status = stub->CancelRun(&context, request, &run);
  if (!status.ok()) return Fail(flags, status);
  std::cout << run.run_id() << ": " << StateName(run.state())
            << (run.message().empty() ? "" : ": " + run.message()) << std::endl;
  return 0;
}

int Logs(const RunFlags& flags) {
  auto stub = Connect(flags);
  v1::StreamLogsRequest request;
  request.set_run_id(flags.run_id);
  request.set_rank(flags.rank);
  request.set_attempt(flags.attempt);
  request.set_follow(flags.follow);
  grpc::ClientContext context;
  AddCredentials(context, flags.security);
  std::unique_ptr<grpc::ClientReader<v1::LogLines>> reader = stub->StreamLogs(&context, request);
  v1::LogLines lines;
  while (reader->Read(&lines)) {
    for (const std::string& line : lines.lines()) std::cout << line << "\n";
    std::cout << std::flush;
  }
  const grpc::Status status = reader->Finish();
  return status.ok() ? 0 : Fail(flags, status);
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* run = app.add_subcommand("run", "Submit, list, watch and cancel training runs.");
  run->require_subcommand(1);
  run->add_option("--scheduler", flags->scheduler, "host:port of the scheduler")
      ->capture_default_str();
  AddClientSecurityFlags(*run, flags->security_files, "", /*with_token=*/true,
                         /*from_environment=*/true);

  CLI::App* submit = run->add_subcommand(
      "submit",
      "Submit a RunSpec (YAML, JSON or .textproto); prints the run id. Every problem of the "
      "spec is reported at once.");
  submit->add_option("spec", flags->spec_path, "The RunSpec file")->required();
  submit->add_flag("--dry-run", flags->dry_run,
                   "Validate and print each stage's plan (steps, tokens per domain, epochs) and "
                   "ranks; submit nothing");
  submit->add_option("--request-id", flags->request_id,
                     "Idempotency key: submitting again with it returns the same run "
                     "(default: a fresh one)");
  submit->add_option("--tokens-per-second-per-gpu", flags->tokens_per_second_per_gpu,
                     "With --dry-run, estimate each stage's time at this throughput");
  submit->callback([flags, exit_code] { *exit_code = Secured(*flags, Submit); });

  CLI::App* list = run->add_subcommand("list", "List runs, newest first.");
  list->add_option("--state", flags->states, "Only runs in these states (repeatable)");
  list->callback([flags, exit_code] { *exit_code = Secured(*flags, List); });

  CLI::App* get = run->add_subcommand(
      "get",
      "Show a run: state, progress, checkpoints, and scores with raw and after-SFT side by side.");
  get->add_option("run_id", flags->run_id, "The run")->required();
  get->add_flag("--json", flags->json, "The whole Run message as JSON");
  get->callback([flags, exit_code] { *exit_code = Secured(*flags, Get); });

  CLI::App* watch = run->add_subcommand(
      "watch",
      "Follow a run's events (states, steps, checkpoints, lost workers, scores) until it ends; "
      "exit 0 if it succeeded");
  watch->add_option("run_id", flags->run_id, "The run")->required();
  watch->callback([flags, exit_code] { *exit_code = Secured(*flags, Watch); });

  CLI::App* cancel =
      run->add_subcommand("cancel", "Cancel a run: its workers stop; checkpoints are kept.");
  cancel->add_option("run_id", flags->run_id, "The run")->required();
  cancel->add_option("--reason", flags->reason, "Recorded on the run");
  cancel->callback([flags, exit_code] { *exit_code = Secured(*flags, Cancel); });

  CLI::App* logs = run->add_subcommand("logs", "Print a worker's log.");
  logs->add_option("run_id", flags->run_id, "The run")->required();
  logs->add_option("--rank", flags->rank, "The worker's rank")->capture_default_str();
  logs->add_option("--attempt", flags->attempt, "The gang attempt (default: the latest)");
  logs->add_flag("--follow", flags->follow, "Keep printing until the attempt ends");
  logs->callback([flags, exit_code] { *exit_code = Secured(*flags, Logs); });
}

}  // namespace prolong::ctl
