#include "services/prolongctl/train_command.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/install.h"
#include "scheduler/launch/process_gang.h"
#include "trainer/parallel/parallel_plan.h"
#include "trainer/train/memory_plan.h"
#include "trainer/worker/worker_options.h"

namespace prolong::ctl {
namespace {

struct TrainFlags {
  bool local = false;
  int nproc = 0;
  int cp = 1;
  std::string trainer_binary;
  std::string rendezvous_host = "127.0.0.1";
  bool plan_memory = false;
  double memory_per_rank_gb = 0;  // 0: the device's default (MemoryCapacity)
  worker::WorkerOptions job;
};

// The bytes a rank may use: --memory-per-rank-gb, else 80 GB on a GPU (ProLong's H100s and
// A100s) and this machine's memory shared by the ranks on the CPU.
int64_t MemoryCapacity(const TrainFlags& flags) {
  if (flags.memory_per_rank_gb > 0) return static_cast<int64_t>(flags.memory_per_rank_gb * 1e9);
  if (flags.job.device == "cuda") return int64_t{80} * 1000 * 1000 * 1000;
  return static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE) / flags.nproc;
}

absl::StatusOr<train::MemoryPlan> PlanJobMemory(const TrainFlags& flags,
                                                const worker::JobFiles& files) {
  train::MemoryLayout layout;
  layout.seq_len = files.stage.seq_len();
  layout.micro_batch_sequences = flags.job.micro_batch_sequences;
  if (layout.seq_len > 0 && flags.job.micro_batch_sequences > 0) {
    const int64_t per_rank = files.stage.batch_tokens() / layout.seq_len / (flags.nproc / flags.cp);
    layout.micro_batches = std::max<int64_t>(
        1, (per_rank + flags.job.micro_batch_sequences - 1) / flags.job.micro_batch_sequences);
  }
  layout.world_size = flags.nproc;
  layout.cp_size = flags.cp;
  layout.plan =
      parallel::ResolveAuto(flags.job.trainer.parallel, layout.seq_len, flags.job.device == "cuda");
  layout.logit_block_size = flags.job.trainer.logit_block_size;
  layout.gpu = flags.job.device == "cuda";
  return train::PlanMemory(files.model_config, layout);
}

// One line when the plan does not fit, naming what to change; OK otherwise.
absl::Status CheckFits(const TrainFlags& flags, const train::MemoryPlan& plan) {
  const int64_t capacity = MemoryCapacity(flags);
  if (plan.peak() <= capacity) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "the layout needs %.1f GB a rank at its peak, over the %.1f GB a rank has (%s); shard the "
      "weights (--shard-weights), split sequences over more ranks (--cp), checkpoint "
      "activations, or set --memory-per-rank-gb; see --plan-memory",
      plan.peak() / 1e9, capacity / 1e9,
      flags.memory_per_rank_gb > 0 ? "--memory-per-rank-gb"
      : flags.job.device == "cuda" ? "an 80 GB GPU"
                                   : "this machine's memory over the ranks"));
}

// Held while writing a line to stdout or stderr, so that lines from the ranks and the
// launcher's own never mix.
ABSL_CONST_INIT absl::Mutex output_mu(absl::kConstInit);

void WriteAll(int fd, absl::string_view text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(output_mu) {
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<size_t>(n);
  }
}

void Say(absl::string_view message) {
  absl::MutexLock lock(&output_mu);
  WriteAll(STDERR_FILENO, absl::StrCat("prolongctl train: ", message, "\n"));
}

int Fail(absl::string_view message) {
  Say(message);
  return 1;
}

// Where rank 0 hosts the gang's store, from its ready line
// ("trainer listening: grpc=... metrics=... rendezvous=HOST:PORT").
class RendezvousAddress {
 public:
  void Observe(absl::string_view line) {
    if (!absl::ConsumePrefix(&line, "trainer listening: ")) return;
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&field, "rendezvous=")) {
        absl::MutexLock lock(&mu_);
        address_ = std::string(field);
      }
    }
  }
  std::string Get() {
    absl::MutexLock lock(&mu_);
    return address_;
  }

 private:
  absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
};

int RunTrain(TrainFlags& flags) {
  if (!flags.local && !flags.plan_memory) {
    return Fail(
        "only --local is supported (worker processes on this machine); other launchers go "
        "through the scheduler");
  }
  if (flags.nproc % flags.cp != 0) {
    return Fail(absl::StrCat("--cp (", flags.cp, ") must divide --nproc (", flags.nproc, ")"));
  }
  // What the job's checks of the layout need to know.
  flags.job.world_size = flags.nproc;
  flags.job.cp_size = flags.cp;
  absl::StatusOr<worker::JobFiles> files = worker::CheckJob(flags.job);
  if (!files.ok()) return Fail(files.status().message());
  absl::StatusOr<train::MemoryPlan> memory = PlanJobMemory(flags, *files);
  if (!memory.ok()) return Fail(memory.status().message());
  const absl::Status fits = CheckFits(flags, *memory);
  if (flags.plan_memory) {
    std::cout << absl::StrFormat("memory per rank: stage %s, %d tokens a sequence, dp %d x cp %d\n",
                                 files->stage.name(), files->stage.seq_len(),
                                 flags.nproc / flags.cp, flags.cp)
              << train::DescribeMemoryPlan(*memory, MemoryCapacity(flags)) << std::flush;
    return fits.ok() ? 0 : Fail(fits.message());
  }
  if (!fits.ok()) return Fail(fits.message());
  absl::StatusOr<std::string> trainer =
      FindBinary("trainer", flags.trainer_binary, "--trainer-binary");
  if (!trainer.ok()) return Fail(trainer.status().message());
  if (!flags.job.deterministic && flags.job.threads == 0) {
    // Workers share the cores; LibTorch would otherwise start one thread per core in each.
    flags.job.threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / flags.nproc);
  }

  // SIGINT and SIGTERM are taken with sigtimedwait below; blocked before any thread starts,
  // so that no thread takes them instead.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int world = flags.nproc;
  const int dp = world / flags.cp;
  Say(absl::StrCat(world, " rank", world > 1 ? "s" : "", " (dp ", dp, " x cp ", flags.cp,
                   "), stage ", files->stage.name(), ", trainer ", *trainer));
  const std::vector<std::string> job_args = worker::JobFlagArgs(flags.job);
  RendezvousAddress rendezvous;
  // Each rank's lines, prefixed; rank 0's ready line says where its store is.
  auto print = [&rendezvous](int rank, int fd, absl::string_view line) {
    if (rank == 0 && fd == 1) rendezvous.Observe(line);
    const std::string text = absl::StrCat("[rank ", rank, "] ", line, "\n");
    absl::MutexLock lock(&output_mu);
    WriteAll(fd, text);
  };
  scheduler::ProcessGang gang(world);
  int failed_rank = -1;
  std::string failure;
  // Rank 0 hosts the store (so that prolongctl need not load LibTorch); the other ranks start
  // once its ready line says where.
  auto start = [&](int rank, const std::vector<std::string>& rendezvous_args) -> bool {
    std::vector<std::string> argv = {*trainer, absl::StrCat("--rank=", rank),
                                     absl::StrCat("--world=", world), absl::StrCat("--dp=", dp),
                                     absl::StrCat("--cp=", flags.cp)};
    argv.insert(argv.end(), rendezvous_args.begin(), rendezvous_args.end());
    argv.insert(argv.end(), job_args.begin(), job_args.end());
    const absl::Status started = gang.Start(rank, argv, print);
    if (!started.ok()) {
      failure = absl::StrCat("rank ", rank, ": ", started.message());
      return false;
    }
    Say(absl::StrCat("rank ", rank, " started (pid ", gang.pid(rank), ")"));
    return true;
  };
  if (!start(0,
             {absl::StrCat("--rendezvous=", flags.rendezvous_host, ":0"), "--host-rendezvous"})) {
    return Fail(failure);
  }

  bool all_started = world == 1;
  int stop_signal = 0;
  while (gang.running() > 0) {
    const timespec poll = {0, 20 * 1000 * 1000};
    const int signal_number = sigtimedwait(&stop_signals, nullptr, &poll);
    if (signal_number == SIGINT || signal_number == SIGTERM) {
      if (stop_signal == 0) {
        stop_signal = signal_number;
        Say(absl::StrCat("received ", strsignal(signal_number),
                         ": the ranks stop after their current step, with a checkpoint (again "
                         "to kill them)"));
        gang.Signal(SIGTERM);
      } else {
        Say("killing the ranks");
        gang.Signal(SIGKILL);
      }
    }
    if (!all_started && failed_rank < 0 && stop_signal == 0) {
      const std::string address = rendezvous.Get();
      if (!address.empty()) {
        all_started = true;
        Say(absl::StrCat("rendezvous at ", address));
        for (int rank = 1; rank < world; ++rank) {
          if (!start(rank, {absl::StrCat("--rendezvous=", address)})) {
            failed_rank = rank;
            Say(absl::StrCat(failure, "; killing the other ranks"));
            gang.Signal(SIGKILL);
            break;
          }
        }
      }
    }
    for (const scheduler::ProcessGang::Exit& exit : gang.Reap()) {
      if (scheduler::ExitCodeOf(exit.status) == 0 || failed_rank >= 0) continue;
      if (stop_signal != 0) {
        Say(absl::StrCat("rank ", exit.rank, " ", scheduler::DescribeExit(exit.status)));
        continue;
      }
      failed_rank = exit.rank;
      failure = absl::StrCat("rank ", exit.rank, " ", scheduler::DescribeExit(exit.status));
      Say(absl::StrCat(failure, "; killing the other ranks"));
      gang.Signal(SIGKILL);
    }
  }
  if (failed_rank >= 0) return Fail(absl::StrCat("failed: ", failure));
  if (stop_signal != 0) {
    Say(absl::StrCat("stopped by ", strsignal(stop_signal), "; rerun the same command to resume"));
    return 128 + stop_signal;
  }
  Say(absl::StrCat("all ", world, " rank", world > 1 ? "s" : "", " finished"));
  return 0;
}

}  // namespace

void AddTrainCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* train = app.add_subcommand(
      "train",
      "Train one stage with a gang of trainer workers: resumes from the newest checkpoint in "
      "--checkpoint-dir, exits 0 when the stage's plan is trained.");
  train->add_flag("--local", flags->local, "Run the workers as processes on this machine");
  train->add_option("--nproc", flags->nproc, "Worker processes (dp x cp)")
      ->required()
      ->check(CLI::PositiveNumber);
  train->add_option("--cp", flags->cp, "Context-parallel size; dp = nproc / cp")
      ->check(CLI::PositiveNumber);
  train->add_option("--trainer-binary", flags->trainer_binary,
                    "The worker binary (default: beside prolongctl, or Bazel's bazel-bin)");
  train->add_option("--rendezvous-host", flags->rendezvous_host,
                    "Address the gang's TCP store (hosted by rank 0) listens on");
  train->add_flag("--plan-memory", flags->plan_memory,
                  "Print each rank's bytes for weights, gradients, optimizer state, activations "
                  "and the loss at the stage's sequence length and this layout, and whether they "
                  "fit; train nothing");
  train
      ->add_option("--memory-per-rank-gb", flags->memory_per_rank_gb,
                   "Memory a rank may use, in GB (default: 80 with --device cuda, else this "
                   "machine's memory over --nproc); a layout that needs more is refused")
      ->check(CLI::PositiveNumber);
  worker::AddJobFlags(*train, flags->job);
  train->callback([flags, exit_code] { *exit_code = RunTrain(*flags); });
}

}  // namespace prolong::ctl
