#include "tests/run_control.h"

#include <signal.h>

#include <algorithm>
#include <map>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "prolong/v1/scheduler.grpc.pb.h"
#include "trainer/checkpoint/checkpoint_store.h"

namespace prolong::testing {

RunResult Ctl(const ServiceProcess& scheduler, std::vector<std::string> args,
              absl::Duration timeout) {
  args.insert(args.begin(), {kProlongctlBinary, "run", "--scheduler=" + scheduler.address});
  absl::StatusOr<RunResult> result = Run(args, timeout);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : RunResult();
}

std::string Submit(const ServiceProcess& scheduler, const std::string& spec_path,
                   const std::vector<std::string>& flags) {
  std::vector<std::string> args = {"submit", spec_path};
  args.insert(args.end(), flags.begin(), flags.end());
  const RunResult result = Ctl(scheduler, args);
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  return std::string(absl::StripAsciiWhitespace(result.stdout_text));
}

std::string RunField(const ServiceProcess& scheduler, const std::string& run_id,
                     const std::string& field) {
  const RunResult result = Ctl(scheduler, {"get", run_id, "--json"});
  std::smatch match;
  const std::regex pattern("\"" + field + "\": \"?([^\",\n]*)\"?");
  if (!std::regex_search(result.stdout_text, match, pattern)) return "";
  return match[1].str();
}

bool WaitFor(const ServiceProcess& scheduler, const std::string& run_id, const std::string& field,
             const std::string& value, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (RunField(scheduler, run_id, field) == value) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

v1::Run GetRun(const ServiceProcess& scheduler, const std::string& run_id) {
  auto stub = v1::Scheduler::NewStub(
      grpc::CreateChannel(scheduler.address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  const grpc::Status status = stub->GetRun(&context, request, &run);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return run;
}

int64_t NewestCheckpointStep(const std::string& stage_dir) {
  auto listed = checkpoint::ListCheckpoints(stage_dir);
  return listed.ok() && !listed->empty() ? listed->back().step : 0;
}

bool WaitForCheckpoint(const std::string& stage_dir, int64_t step, absl::Duration timeout,
                       absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (NewestCheckpointStep(stage_dir) >= step) return true;
    absl::SleepFor(poll);
  }
  return false;
}

std::vector<pid_t> WorkerPids(const Subprocess& scheduler, int64_t attempt,
                              const std::string& run_id) {
  std::map<int, pid_t> by_rank;
  const std::regex pattern(
      absl::StrCat(R"(worker )", run_id, "/", attempt, R"(/(\d+) registered \(.*, pid (\d+)\))"));
  const std::string log = scheduler.Stderr();
  for (std::sregex_iterator it(log.begin(), log.end(), pattern), end; it != end; ++it) {
    by_rank[std::stoi((*it)[1].str())] = std::stoi((*it)[2].str());
  }
  std::vector<pid_t> pids;
  for (const auto& [rank, pid] : by_rank) pids.push_back(pid);
  return pids;
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

bool AllGone(const std::vector<pid_t>& pids) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto any_alive = [&] { return std::any_of(pids.begin(), pids.end(), Alive); };
  while (any_alive() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  return !any_alive();
}

}  // namespace prolong::testing
