#include "services/prolongctl/up_command.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_get.h"
#include "common/install.h"
#include "scheduler/launch/process_gang.h"

namespace prolong::ctl {
namespace {

struct UpFlags {
  std::string home;
  // Ports from here: the scheduler's gRPC and /metrics, then the datamixer's, then the
  // evaluator's, 10 apart (7400, 7401, 7410, 7411, 7420, 7421). 0: any free ports.
  int port_base = 7400;
  std::string tokenizer;
  std::string preset;
  std::vector<std::string> allowed_roots;
  bool check = false;
  std::string bin_dir;
};

struct Service {
  std::string name;
  std::vector<std::string> args;
  std::string address;
  std::string metrics_address;
  std::string log;
};

// The service's ready line ("NAME listening: grpc=... metrics=...") from its log.
bool ReadReadyLine(Service& service) {
  std::ifstream log(service.log);
  std::string line;
  while (std::getline(log, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, absl::StrCat(service.name, " listening: "))) continue;
    for (absl::string_view field : absl::StrSplit(rest, ' ')) {
      if (absl::ConsumePrefix(&field, "grpc=")) service.address = std::string(field);
      if (absl::ConsumePrefix(&field, "metrics=")) service.metrics_address = std::string(field);
    }
    return true;
  }
  return false;
}

std::string LastLines(const std::string& path, int count) {
  std::ifstream log(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(log, line);) lines.push_back(line);
  std::string text;
  for (size_t i = lines.size() > static_cast<size_t>(count) ? lines.size() - count : 0;
       i < lines.size(); ++i) {
    text += "  " + lines[i] + "\n";
  }
  return text;
}

int Up(const UpFlags& flags) {
  const std::string home = flags.home.empty() ? ProlongHome() : flags.home;
  std::error_code error;
  std::filesystem::create_directories(home + "/logs", error);
  if (error) {
    std::cerr << "prolongctl up: cannot create " << home << "/logs: " << error.message()
              << std::endl;
    return 1;
  }
  auto port = [&](int offset) {
    return flags.port_base == 0 ? std::string("127.0.0.1:0")
                                : absl::StrCat("127.0.0.1:", flags.port_base + offset);
  };
  std::vector<Service> services = {{"datamixer", {"--store=" + home + "/store"}},
                                   {"evaluator", {"--store=" + home + "/eval-results"}},
                                   {"scheduler", {"--state-dir=" + home + "/scheduler"}}};
  std::string tokenizer = flags.tokenizer, preset = flags.preset;
  if (tokenizer.empty() && access((home + "/cl100k_base.tiktoken").c_str(), R_OK) == 0) {
    tokenizer = home + "/cl100k_base.tiktoken";
    preset = "cl100k_base";
  }
  if (tokenizer.empty() && !std::filesystem::exists(home + "/store")) {
    std::cerr << "prolongctl up: no store at " << home
              << "/store and no tokenizer to create one with: pass --tokenizer (and --preset), "
                 "or put cl100k_base.tiktoken in "
              << home << " (tools/run_local.sh does)" << std::endl;
    return 1;
  }
  if (!tokenizer.empty()) {
    services[0].args.push_back("--tokenizer=" + tokenizer);
    if (!preset.empty()) services[0].args.push_back("--preset=" + preset);
  }
  services[2].args.push_back("--allowed-root=" + home);
  for (const std::string& root : flags.allowed_roots) {
    services[2].args.push_back("--allowed-root=" + root);
  }
  const int offsets[] = {10, 20, 0};
  for (int i = 0; i < 3; ++i) {
    const absl::StatusOr<std::string> binary = FindBinary(
        services[i].name, flags.bin_dir.empty() ? "" : flags.bin_dir + "/" + services[i].name,
        "--bin-dir");
    if (!binary.ok()) {
      std::cerr << "prolongctl up: " << binary.status().message() << std::endl;
      return 1;
    }
    services[i].args.insert(
        services[i].args.begin(),
        {*binary, "--address=" + port(offsets[i]), "--metrics-address=" + port(offsets[i] + 1)});
    services[i].log = absl::StrCat(home, "/logs/", services[i].name, ".log");
  }

  // SIGINT and SIGTERM are taken with sigtimedwait; blocked before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  scheduler::ProcessGang gang(3);
  // The scheduler starts last: it is told where the other two listen.
  for (int i = 0; i < 3; ++i) {
    Service& service = services[i];
    if (service.name == "scheduler") {
      service.args.push_back("--datamixer=" + services[0].address);
      service.args.push_back("--evaluator=" + services[1].address);
    }
    std::ofstream(service.log, std::ios::trunc);  // this start's lines only
    const absl::Status started = gang.Start(i, service.args, service.log);
    if (!started.ok()) {
      std::cerr << "prolongctl up: " << service.name << ": " << started.message() << std::endl;
      return 1;
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (!ReadReadyLine(service)) {
      const bool exited = !gang.Reap().empty();
      if (exited || absl::Now() > deadline) {
        std::cerr << "prolongctl up: " << service.name
                  << (exited ? " exited" : " did not start within 60 s") << "; " << service.log
                  << " ends with:\n"
                  << LastLines(service.log, 5) << std::flush;
        return 1;  // the gang's destructor stops the others
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    absl::StatusOr<std::string> metrics = HttpGet(service.metrics_address, "/metrics");
    if (!metrics.ok() || !absl::StrContains(*metrics, "prolong_build_info")) {
      std::cerr << "prolongctl up: " << service.name << " serves no /metrics on "
                << service.metrics_address << std::endl;
      return 1;
    }
    std::cout << absl::StrFormat("%-10s grpc %-21s metrics http://%s/metrics  log %s\n",
                                 service.name, service.address, service.metrics_address,
                                 service.log);
  }
  if (flags.check) {
    std::cout << "stack healthy; stopping (--check)" << std::endl;
    gang.Signal(SIGTERM);
  } else {
    std::cout << "stack up under " << home
              << ": `prolongctl run --scheduler=" << services[2].address
              << " submit SPEC`, then `prolongctl run --scheduler=" << services[2].address
              << " watch ID`; Ctrl-C stops it" << std::endl;
  }

  int exit_code = 0;
  bool stopping = flags.check;
  absl::Time kill_at = flags.check ? absl::Now() + absl::Seconds(10) : absl::InfiniteFuture();
  while (gang.running() > 0) {
    const timespec poll = {0, 50 * 1000 * 1000};
    const int signal_number = sigtimedwait(&stop_signals, nullptr, &poll);
    if ((signal_number == SIGINT || signal_number == SIGTERM) && !stopping) {
      stopping = true;
      std::cout << "stopping the stack" << std::endl;
      gang.Signal(SIGTERM);
      kill_at = absl::Now() + absl::Seconds(10);
    }
    if (absl::Now() > kill_at) gang.Signal(SIGKILL);
    for (const scheduler::ProcessGang::Exit& exit : gang.Reap()) {
      if (stopping) continue;
      std::cerr << "prolongctl up: " << services[exit.rank].name << " "
                << scheduler::DescribeExit(exit.status) << "; stopping the others; "
                << services[exit.rank].log << " ends with:\n"
                << LastLines(services[exit.rank].log, 5) << std::flush;
      exit_code = 1;
      stopping = true;
      gang.Signal(SIGTERM);
      kill_at = absl::Now() + absl::Seconds(10);
    }
  }
  if (exit_code == 0) std::cout << "stack stopped" << std::endl;
  return exit_code;
}

}  // namespace

void AddUpCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<UpFlags>();
  CLI::App* up = app.add_subcommand(
      "up",
      "Run the embedded stack on this machine (datamixer, evaluator, scheduler) until Ctrl-C: "
      "state, stores and logs under --home, runs launched as local processes.");
  up->add_option("--home", flags->home,
                 "Where the stack keeps its state (default: $PROLONG_HOME, else ~/.prolong)");
  up->add_option("--port-base", flags->port_base,
                 "The scheduler's port; its /metrics on the next, the datamixer's 10 and 11 "
                 "above, the evaluator's 20 and 21 above; 0: any free ports")
      ->capture_default_str();
  up->add_option("--tokenizer", flags->tokenizer,
                 "The datamixer's tokenizer for ingests (default: HOME/cl100k_base.tiktoken if "
                 "present)");
  up->add_option("--preset", flags->preset, "llama3 or cl100k_base, for a bare rank file");
  up->add_option("--allowed-root", flags->allowed_roots,
                 "A directory run specs may name besides --home (repeatable)");
  up->add_option("--bin-dir", flags->bin_dir,
                 "Where the service binaries are (default: beside prolongctl, or Bazel's "
                 "bazel-bin)");
  up->add_flag("--check", flags->check, "Start, check each service's /metrics, stop");
  up->callback([flags, exit_code] { *exit_code = Up(*flags); });
}

}  // namespace prolong::ctl
