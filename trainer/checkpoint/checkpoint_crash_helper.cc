// The process checkpoint_crash_test kills: checkpoint_crash_helper --dir=DIR [--resave]
//
// Resumes from the newest valid checkpoint in DIR (cleaning up after a crash, as a resuming
// trainer does) or starts fresh, and prints "resumed STEP" or "fresh". Before that, a resumed
// state is compared bitwise (weights, optimizer state, RNG state) with a replay, in this
// process, of the same training from scratch to that step: training is deterministic given the
// seeds, so a run killed and resumed any number of times must match one that never stopped.
// A mismatch is printed and exits 1. With --resave it then saves the resumed step again
// (replacing it). Then it trains a tiny model forever, saving a checkpoint after every step
// (keeping the last 3) and printing "saved STEP" once each save is complete.

#include <cstring>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "torch/utils.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_test_util.h"
#include "trainer/checkpoint/trainer_state.h"
#include "trainer/checkpoint/training_checkpoint.h"

namespace prolong::checkpoint {
namespace {

constexpr uint64_t kModelSeed = 1;
constexpr uint64_t kDataSeed = 7;
constexpr int kKeepLast = 3;

struct Run {
  std::shared_ptr<model::LlamaForCausalLM> model;
  std::unique_ptr<torch::optim::AdamW> optimizer;
};

Run Fresh() {
  Run run;
  run.model = model::CreateLlama(testing::TinyConfig(), kModelSeed).value();
  run.optimizer = testing::MakeAdamW(*run.model);
  torch::manual_seed(kDataSeed);
  return run;
}

absl::Status Save(const std::string& dir, Run& run, TrainerState& state) {
  ASSIGN_OR_RETURN(OptimizerState optimizer,
                   ExtractAdamWState(*run.optimizer, run.model->named_parameters()));
  state.rng = CaptureRngState();
  state.data_cursor["global_step"] = absl::StrCat(state.step);
  SaveOptions options;
  options.keep_last = kKeepLast;
  return SaveCheckpoint(dir, *run.model, optimizer, state, options).status();
}

bool Same(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes().equals(b.sizes()) &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

// Prints what differs between `resumed` and a fresh run trained to `step`; true if nothing.
// Leaves the RNG as it found it.
bool MatchesReplay(Run& resumed, int64_t step) {
  const RngState resumed_rng = CaptureRngState();
  Run replay = Fresh();
  for (int64_t i = 0; i < step; ++i) testing::TrainStep(*replay.model, *replay.optimizer);
  int differences = 0;
  if (!(CaptureRngState() == resumed_rng)) {
    std::cout << "RNG state differs" << std::endl;
    ++differences;
  }
  const auto replayed = replay.model->named_parameters();
  for (const auto& item : resumed.model->named_parameters()) {
    if (!Same(item.value(), replayed[item.key()])) {
      std::cout << "parameter " << item.key() << " differs" << std::endl;
      ++differences;
    }
  }
  const OptimizerState a =
      ExtractAdamWState(*resumed.optimizer, resumed.model->named_parameters()).value();
  const OptimizerState b = ExtractAdamWState(*replay.optimizer, replayed).value();
  if (a.tensors.size() != b.tensors.size()) {
    std::cout << "optimizer tensors: " << a.tensors.size() << " vs " << b.tensors.size()
              << std::endl;
    ++differences;
  }
  for (const auto& [name, tensor] : a.tensors) {
    if (b.tensors.count(name) == 0 || !Same(tensor, b.tensors.at(name))) {
      std::cout << "optimizer tensor " << name << " differs" << std::endl;
      ++differences;
    }
  }
  RestoreRngState(resumed_rng).IgnoreError();
  return differences == 0;
}

int Train(const std::string& dir, bool resave) {
  Run run = Fresh();
  TrainerState state;
  state.run.run_name = "crash-helper";
  absl::StatusOr<CheckpointRef> resumed = ResumeLatest(dir, *run.model, *run.optimizer, &state);
  if (resumed.ok()) {
    if (state.step != resumed->step || !MatchesReplay(run, resumed->step)) {
      std::cout << "checkpoint " << resumed->path << " (trainer_state step " << state.step
                << ") differs from a replay" << std::endl;
      return 1;
    }
    std::cout << "resumed " << resumed->step << std::endl;
    if (resave) {
      if (absl::Status status = Save(dir, run, state); !status.ok()) {
        std::cerr << status << std::endl;
        return 1;
      }
      std::cout << "saved " << state.step << std::endl;
    }
  } else if (absl::IsNotFound(resumed.status())) {
    std::cout << "fresh" << std::endl;
  } else {
    std::cerr << resumed.status() << std::endl;
    return 1;
  }
  while (true) {
    testing::TrainStep(*run.model, *run.optimizer);
    ++state.step;
    if (absl::Status status = Save(dir, run, state); !status.ok()) {
      std::cerr << status << std::endl;
      return 1;
    }
    std::cout << "saved " << state.step << std::endl;
  }
}

}  // namespace
}  // namespace prolong::checkpoint

int main(int argc, char** argv) {
  std::string dir;
  bool resave = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--dir=")) {
      dir = std::string(arg);
    } else if (arg == "--resave") {
      resave = true;
    } else {
      std::cerr << "unknown argument " << arg << std::endl;
      return 2;
    }
  }
  if (dir.empty()) {
    std::cerr << "usage: " << argv[0] << " --dir=DIR [--resave]" << std::endl;
    return 2;
  }
  // One thread: deterministic and polite to the test running beside it.
  torch::set_num_threads(1);
  return prolong::checkpoint::Train(dir, resave);
}
