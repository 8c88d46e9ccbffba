#include "trainer/checkpoint/training_checkpoint.h"

#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "torch/version.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/checkpoint_test_util.h"
#include "trainer/checkpoint/trainer_state.h"
#include "trainer/model/hf_checkpoint.h"
#include "trainer/model/llama.h"
#include "trainer/model/llama_config.h"

namespace prolong::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::prolong::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::MakeAdamW;
using testing::TinyConfig;
using testing::TrainStep;
using torch::Tensor;

std::shared_ptr<model::LlamaForCausalLM> Model(const model::LlamaConfig& config, uint64_t seed) {
  absl::StatusOr<std::shared_ptr<model::LlamaForCausalLM>> model = model::CreateLlama(config, seed);
  EXPECT_OK(model);
  return *model;
}

// Bitwise: same dtype, shape and bytes.
::testing::AssertionResult Identical(const Tensor& a, const Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    return ::testing::AssertionFailure() << a.scalar_type() << " vs " << b.scalar_type();
  }
  if (!a.sizes().equals(b.sizes())) {
    return ::testing::AssertionFailure() << a.sizes() << " vs " << b.sizes();
  }
  const Tensor x = a.contiguous();
  const Tensor y = b.contiguous();
  if (std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) != 0) {
    return ::testing::AssertionFailure() << "different bytes";
  }
  return ::testing::AssertionSuccess();
}

void ExpectSameParameters(model::LlamaForCausalLM& a, model::LlamaForCausalLM& b) {
  const auto theirs = b.named_parameters();
  for (const auto& item : a.named_parameters()) {
    EXPECT_TRUE(Identical(item.value(), theirs[item.key()])) << item.key();
  }
}

void ExpectSameOptimizerState(torch::optim::AdamW& a, model::LlamaForCausalLM& model_a,
                              torch::optim::AdamW& b, model::LlamaForCausalLM& model_b) {
  absl::StatusOr<OptimizerState> x = ExtractAdamWState(a, model_a.named_parameters());
  absl::StatusOr<OptimizerState> y = ExtractAdamWState(b, model_b.named_parameters());
  ASSERT_OK(x);
  ASSERT_OK(y);
  ASSERT_EQ(x->tensors.size(), y->tensors.size());
  for (const auto& [name, tensor] : x->tensors) {
    ASSERT_EQ(y->tensors.count(name), 1u) << name;
    EXPECT_TRUE(Identical(tensor, y->tensors.at(name))) << name;
  }
}

TrainerState SomeTrainerState(int64_t step) {
  TrainerState state;
  state.step = step;
  state.stage_index = 1;
  state.stage_name = "stage2-512k";
  state.schedule = {{"stage_step", "2"}, {"lr", "0.01"}};
  state.data_cursor = {{"plan_id", "plan-7"},
                       {"data_fingerprint", "sha256:abc"},
                       {"stage", "1"},
                       {"seed", "42"},
                       {"global_step", absl::StrCat(step)}};
  state.run.run_name = "tiny";
  state.run.dp_size = 2;
  state.run.cp_size = 2;
  state.elapsed_seconds = 12.5;
  return state;
}

// A model and an AdamW after a few steps, and the state to save with them.
struct Trained {
  std::shared_ptr<model::LlamaForCausalLM> model;
  std::unique_ptr<torch::optim::AdamW> optimizer;
};
Trained Train(int steps, bool amsgrad = false, uint64_t seed = 1) {
  Trained trained;
  trained.model = Model(TinyConfig(), seed);
  trained.optimizer = MakeAdamW(*trained.model, amsgrad);
  for (int i = 0; i < steps; ++i) TrainStep(*trained.model, *trained.optimizer);
  return trained;
}

absl::StatusOr<std::string> Save(const std::string& dir, Trained& trained, int64_t step,
                                 int keep_last = 0) {
  ASSIGN_OR_RETURN(OptimizerState optimizer,
                   ExtractAdamWState(*trained.optimizer, trained.model->named_parameters()));
  TrainerState state = SomeTrainerState(step);
  state.rng = CaptureRngState();
  SaveOptions options;
  options.keep_last = keep_last;
  return SaveCheckpoint(dir, *trained.model, optimizer, state, options);
}

class RoundTripTest : public ::testing::TestWithParam<bool> {};

TEST_P(RoundTripTest, RestoresModelOptimizerAndRngBitwise) {
  const bool amsgrad = GetParam();
  torch::manual_seed(5);
  Trained original = Train(2, amsgrad);
  const std::string dir = prolong::testing::MakeTempDir();
  const RngState rng_at_save = CaptureRngState();
  absl::StatusOr<std::string> path = Save(dir, original, 2);
  ASSERT_OK(path);
  EXPECT_EQ(*path, dir + "/step-00000002");

  // What the generator gives next, then the original's third step from the same point.
  const Tensor next_draw = torch::rand({8});
  ASSERT_OK(RestoreRngState(rng_at_save));
  TrainStep(*original.model, *original.optimizer);
  const RngState rng_after_original_step = CaptureRngState();

  // A fresh model (other weights) and a fresh optimizer (no state), the generator elsewhere.
  Trained restored = Train(0, amsgrad, /*seed=*/99);
  torch::manual_seed(12345);
  TrainerState state;
  ASSERT_OK(LoadCheckpoint(*path, *restored.model, *restored.optimizer, &state));
  EXPECT_EQ(CaptureRngState(), rng_at_save);
  EXPECT_TRUE(Identical(torch::rand({8}), next_draw));

  TrainerState expected = SomeTrainerState(2);
  expected.rng = rng_at_save;
  expected.saved_at = state.saved_at;
  expected.run.versions = {{"prolong", "0.1.0"}, {"torch", TORCH_VERSION}};
  EXPECT_EQ(state, expected);
  EXPECT_THAT(state.saved_at, ::testing::MatchesRegex("20[0-9-]+T[0-9:]+Z"));

  // The loaded weights and moments are the ones saved: a second run of the same two steps.
  torch::manual_seed(5);
  Trained replay = Train(2, amsgrad);
  ExpectSameParameters(*restored.model, *replay.model);
  ExpectSameOptimizerState(*restored.optimizer, *restored.model, *replay.optimizer, *replay.model);

  // One more step from the restored state equals the original's third step, bitwise.
  ASSERT_OK(RestoreRngState(state.rng));
  TrainStep(*restored.model, *restored.optimizer);
  EXPECT_EQ(CaptureRngState(), rng_after_original_step);
  ExpectSameParameters(*restored.model, *original.model);
  ExpectSameOptimizerState(*restored.optimizer, *restored.model, *original.optimizer,
                           *original.model);

  // The model directory is a Hugging Face checkpoint on its own.
  absl::StatusOr<std::shared_ptr<model::LlamaForCausalLM>> hf = model::LoadLlama(*path + "/model");
  ASSERT_OK(hf);
  ExpectSameParameters(**hf, *replay.model);
}

INSTANTIATE_TEST_SUITE_P(AmsGrad, RoundTripTest, ::testing::Bool());

TEST(TrainingCheckpointTest, LoadRestoresOnlyTheOptimizerStateOfTheParametersAsked) {
  Trained original = Train(2);
  const std::string dir = prolong::testing::MakeTempDir();
  absl::StatusOr<std::string> path = Save(dir, original, 2);
  ASSERT_OK(path);

  Trained restored = Train(1, /*amsgrad=*/false, /*seed=*/99);  // state for every parameter
  LoadOptions load;
  load.optimizer_parameters = [](const std::string& name) { return name == "model.norm.weight"; };
  TrainerState state;
  ASSERT_OK(LoadCheckpoint(*path, *restored.model, *restored.optimizer, &state, load));
  ExpectSameParameters(*restored.model, *original.model);
  absl::StatusOr<OptimizerState> got =
      ExtractAdamWState(*restored.optimizer, restored.model->named_parameters());
  absl::StatusOr<OptimizerState> want =
      ExtractAdamWState(*original.optimizer, original.model->named_parameters());
  ASSERT_OK(got);
  ASSERT_OK(want);
  std::vector<std::string> names;
  for (const auto& [name, tensor] : got->tensors) {
    names.push_back(name);
    EXPECT_TRUE(Identical(tensor, want->tensors.at(name))) << name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"exp_avg/model.norm.weight", "exp_avg_sq/model.norm.weight",
                                      "step/model.norm.weight"}));

  // What the filter reads is checked as before, and so is a tensor of no parameter.
  OptimizerState saved = *want;
  saved.tensors["exp_avg/model.no_such.weight"] = torch::zeros({2});
  TrainerState stamped = SomeTrainerState(3);
  absl::StatusOr<std::string> bad = SaveCheckpoint(dir, *original.model, saved, stamped);
  ASSERT_OK(bad);
  const absl::Status refused =
      LoadCheckpoint(*bad, *restored.model, *restored.optimizer, &state, load);
  EXPECT_THAT(refused,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("model.no_such.weight")));
}

// Keeps each parameter's odd rows (a stand-in for a rank's block of sharded weights).
class OddRows final : public model::ParameterParts {
 public:
  explicit OddRows(model::LlamaForCausalLM& whole) {
    for (const auto& item : whole.named_parameters())
      shapes_[item.key()] = item.value().sizes().vec();
  }
  std::vector<int64_t> WholeShape(const std::string& name) const override {
    const auto it = shapes_.find(name);
    return it == shapes_.end() ? std::vector<int64_t>() : it->second;
  }
  Tensor Part(const std::string&, const Tensor& whole) const override {
    return whole.slice(0, 1, whole.size(0), 2).clone();
  }
  // `model`'s parameters cut to their parts, as a sharded model holds them.
  void Cut(model::LlamaForCausalLM& model) const {
    for (auto& item : model.named_parameters()) {
      item.value().set_data(Part(item.key(), item.value().detach()));
    }
  }

 private:
  std::map<std::string, std::vector<int64_t>> shapes_;
};

// A rank that keeps parts of its parameters reads each whole tensor and keeps its part of the
// weights and the moments; a checkpoint whose whole shapes differ is refused by name.
TEST(TrainingCheckpointTest, LoadKeepsTheGivenPartsOfWeightsAndMoments) {
  Trained original = Train(2);
  const std::string dir = prolong::testing::MakeTempDir();
  absl::StatusOr<std::string> path = Save(dir, original, 2);
  ASSERT_OK(path);

  const OddRows parts(*original.model);
  std::shared_ptr<model::LlamaForCausalLM> model = Model(TinyConfig(), 5);
  parts.Cut(*model);
  std::unique_ptr<torch::optim::AdamW> optimizer = MakeAdamW(*model, false);
  LoadOptions load;
  load.parts = &parts;
  TrainerState state;
  ASSERT_OK(LoadCheckpoint(*path, *model, *optimizer, &state, load));
  absl::StatusOr<OptimizerState> want =
      ExtractAdamWState(*original.optimizer, original.model->named_parameters());
  absl::StatusOr<OptimizerState> got = ExtractAdamWState(*optimizer, model->named_parameters());
  ASSERT_OK(want);
  ASSERT_OK(got);
  const auto whole = original.model->named_parameters();
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(Identical(item.value(), parts.Part(item.key(), whole[item.key()].detach())))
        << item.key();
  }
  ASSERT_EQ(got->tensors.size(), want->tensors.size());
  for (const auto& [name, tensor] : got->tensors) {
    const bool step = name.rfind("step/", 0) == 0;
    EXPECT_TRUE(
        Identical(tensor, step ? want->tensors.at(name) : parts.Part("", want->tensors.at(name))))
        << name;
  }

  // Parts of a model of another width: the whole shapes differ, though parts might not.
  model::LlamaConfig wider = TinyConfig();
  wider.intermediate_size += 1;
  std::shared_ptr<model::LlamaForCausalLM> other = Model(wider, 5);
  const OddRows other_parts(*other);
  other_parts.Cut(*other);
  std::unique_ptr<torch::optim::AdamW> other_optimizer = MakeAdamW(*other, false);
  load.parts = &other_parts;
  EXPECT_THAT(LoadCheckpoint(*path, *other, *other_optimizer, &state, load),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("intermediate_size")));
  load.verification.reset();
  EXPECT_THAT(ReadOptimizerState(*path, nullptr, &other_parts).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the model expects [")));
}

TEST(TrainingCheckpointTest, OptimizerStateNamesAndMetadata) {
  torch::manual_seed(1);
  Trained trained = Train(2);
  absl::StatusOr<OptimizerState> state =
      ExtractAdamWState(*trained.optimizer, trained.model->named_parameters());
  ASSERT_OK(state);
  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  EXPECT_EQ(state->tensors.at("exp_avg/" + name).sizes(), torch::IntArrayRef({32, 32}));
  EXPECT_EQ(state->tensors.at("exp_avg_sq/" + name).sizes(), torch::IntArrayRef({32, 32}));
  EXPECT_EQ(state->tensors.at("step/" + name).item<int64_t>(), 2);
  EXPECT_EQ(state->tensors.count("max_exp_avg_sq/" + name), 0u);
  EXPECT_EQ(state->tensors.size(), 3 * trained.model->named_parameters().size());
  EXPECT_EQ(state->metadata.at("optimizer"), "adamw");
  EXPECT_EQ(state->metadata.at("param_group.0.lr"), "0.01");
  EXPECT_EQ(state->metadata.at("param_group.0.beta2"), "0.95");
  EXPECT_EQ(state->metadata.at("param_group.0.weight_decay"), "0.1");

  // A parameter the optimizer holds but the list leaves out would be lost.
  NamedParameters partial;
  partial.insert("lm_head.weight", trained.model->lm_head->weight);
  EXPECT_THAT(ExtractAdamWState(*trained.optimizer, partial),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(TrainingCheckpointTest, RestoreRejectsStateThatDoesNotFit) {
  torch::manual_seed(1);
  Trained trained = Train(1);
  const auto parameters = trained.model->named_parameters();
  OptimizerState good = ExtractAdamWState(*trained.optimizer, parameters).value();
  Trained fresh = Train(0);
  const auto fresh_parameters = fresh.model->named_parameters();
  auto error = [&](const OptimizerState& state) {
    const absl::Status status = RestoreAdamWState(state, fresh_parameters, *fresh.optimizer);
    EXPECT_TRUE(fresh.optimizer->state().empty()) << "changed on error";
    return std::string(status.message());
  };
  const std::string name = "model.layers.1.mlp.up_proj.weight";

  OptimizerState shape = good;
  shape.tensors["exp_avg/" + name] = torch::zeros({3, 5});
  EXPECT_THAT(error(shape), HasSubstr("optimizer tensor exp_avg/" + name +
                                      " has shape [3, 5], the parameter has [64, 32]"));
  OptimizerState unknown = good;
  unknown.tensors["exp_avg/model.layers.7.mlp.up_proj.weight"] = torch::zeros({64, 32});
  EXPECT_THAT(error(unknown), HasSubstr("model.layers.7.mlp.up_proj.weight, which the model "
                                        "does not have"));
  OptimizerState missing = good;
  missing.tensors.erase("exp_avg_sq/" + name);
  EXPECT_THAT(error(missing), HasSubstr("lacks exp_avg_sq/" + name));
  OptimizerState other = good;
  other.metadata["optimizer"] = "sgd";
  EXPECT_THAT(error(other), HasSubstr("not AdamW's"));
  OptimizerState odd = good;
  odd.tensors["momentum/" + name] = torch::zeros({64, 32});
  EXPECT_THAT(error(odd), HasSubstr("unexpected optimizer tensor momentum/" + name));

  ASSERT_OK(RestoreAdamWState(good, fresh_parameters, *fresh.optimizer));
  EXPECT_EQ(fresh.optimizer->state().size(), parameters.size());
}

TEST(TrainingCheckpointTest, ConfigMismatchNamesTheKeyAndChangesNothing) {
  torch::manual_seed(1);
  Trained trained = Train(1);
  const std::string path = Save(prolong::testing::MakeTempDir(), trained, 1).value();

  model::LlamaConfig wider = TinyConfig();
  wider.intermediate_size = 96;
  auto other = Model(wider, 3);
  auto other_optimizer = MakeAdamW(*other);
  const Tensor before = other->named_parameters()["model.norm.weight"].clone();
  const RngState rng_before = CaptureRngState();
  TrainerState state;
  const absl::Status status = LoadCheckpoint(path, *other, *other_optimizer, &state);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr(path + "/model/config.json: intermediate_size is 64, "
                                                "the model has 96")));
  EXPECT_TRUE(Identical(other->named_parameters()["model.norm.weight"], before));
  EXPECT_TRUE(other_optimizer->state().empty());
  EXPECT_EQ(CaptureRngState(), rng_before);
  EXPECT_EQ(state.step, 0);
}

// A checkpoint whose config.json agrees with the model but whose tensors do not.
TEST(TrainingCheckpointTest, ShapeMismatchNamesTheTensorAndBothShapes) {
  torch::manual_seed(1);
  Trained trained = Train(1);
  const std::string dir = prolong::testing::MakeTempDir();
  model::LlamaConfig wider = TinyConfig();
  wider.intermediate_size = 96;
  auto other = Model(wider, 3);
  auto other_optimizer = MakeAdamW(*other);
  const Tensor before = other->named_parameters()["model.norm.weight"].clone();
  LoadOptions unverified;
  unverified.verification = std::nullopt;
  TrainerState state;

  // With optimizer state: its moments are checked first.
  const std::string path = Save(dir + "/a", trained, 1).value();
  ASSERT_OK(model::WriteLlamaConfig(path + "/model/config.json", wider));
  absl::Status status = LoadCheckpoint(path, *other, *other_optimizer, &state);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss));  // the manifest sees the edit
  status = LoadCheckpoint(path, *other, *other_optimizer, &state, unverified);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr(path + "/optimizer.safetensors: optimizer tensor "
                                                "exp_avg/model.layers.0.mlp.gate_proj.weight "
                                                "has shape [64, 32], the parameter has [96, 32]")));

  // Without optimizer state (saved before the first step): the weights.
  Trained untrained = Train(0);
  OptimizerState empty =
      ExtractAdamWState(*untrained.optimizer, untrained.model->named_parameters()).value();
  EXPECT_TRUE(empty.tensors.empty());
  const std::string path_b =
      SaveCheckpoint(dir + "/b", *untrained.model, empty, SomeTrainerState(0)).value();
  ASSERT_OK(model::WriteLlamaConfig(path_b + "/model/config.json", wider));
  status = LoadCheckpoint(path_b, *other, *other_optimizer, &state, unverified);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               AllOf(HasSubstr("tensor model.layers.0.mlp.gate_proj.weight"),
                                     HasSubstr("has shape [64, 32], the model expects [96, 32]"))));

  EXPECT_TRUE(Identical(other->named_parameters()["model.norm.weight"], before));
  EXPECT_TRUE(other_optimizer->state().empty());
  EXPECT_EQ(state.step, 0);
}

TEST(TrainingCheckpointTest, MissingFileIsNamed) {
  torch::manual_seed(1);
  Trained trained = Train(1);
  const std::string dir = prolong::testing::MakeTempDir();
  const std::string path = Save(dir, trained, 1).value();
  fs::remove(path + "/optimizer.safetensors");
  TrainerState state;
  absl::Status status = LoadCheckpoint(path, *trained.model, *trained.optimizer, &state);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kNotFound,
                               HasSubstr(path + ": missing file optimizer.safetensors")));
  LoadOptions unverified;
  unverified.verification = std::nullopt;
  status = LoadCheckpoint(path, *trained.model, *trained.optimizer, &state, unverified);
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(path + "/optimizer.safetensors")));
}

TEST(TrainingCheckpointTest, ResumeSkipsCorruptWeightsAndRetentionKeepsK) {
  torch::manual_seed(1);
  Trained trained = Train(0);
  const std::string dir = prolong::testing::MakeTempDir();
  for (int step = 1; step <= 4; ++step) {
    TrainStep(*trained.model, *trained.optimizer);
    ASSERT_OK(Save(dir, trained, step, /*keep_last=*/2));
  }
  absl::StatusOr<std::vector<CheckpointRef>> all = ListCheckpoints(dir);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].step, 3);
  EXPECT_EQ((*all)[1].step, 4);

  // A flipped byte in the newest checkpoint's weights (in the data, past the header).
  const std::string weights = dir + "/step-00000004/model/model.safetensors";
  {
    std::fstream file(weights, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(-100, std::ios::end);
    char byte;
    file.read(&byte, 1);
    byte ^= 0x40;
    file.seekp(-100, std::ios::end);
    file.write(&byte, 1);
  }
  Trained fresh = Train(0, false, 77);
  TrainerState state;
  ::testing::internal::CaptureStderr();
  absl::StatusOr<CheckpointRef> resumed = ResumeLatest(dir, *fresh.model, *fresh.optimizer, &state);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_OK(resumed);
  EXPECT_EQ(resumed->step, 3);
  EXPECT_EQ(state.step, 3);
  EXPECT_THAT(log, HasSubstr("skipping checkpoint " + dir +
                             "/step-00000004: model/model.safetensors: checksum mismatch"));
  EXPECT_TRUE(fs::exists(weights));  // left for the operator

  EXPECT_THAT(ResumeLatest(prolong::testing::MakeTempDir(), *fresh.model, *fresh.optimizer, &state),
              StatusIs(absl::StatusCode::kNotFound));
}

// A disk that fills during a save (the file-size limit here; ENOSPC or a quota alike): the save
// fails with RESOURCE_EXHAUSTED naming the file, leaves no partial checkpoint behind, the
// previous checkpoint stays the newest valid one, a resume takes it, and a later save works.
TEST(TrainingCheckpointTest, ADiskFullDuringASaveKeepsThePreviousCheckpointNewest) {
  torch::manual_seed(1);
  Trained trained = Train(1);
  const std::string dir = prolong::testing::MakeTempDir();
  ASSERT_OK(Save(dir, trained, 1));
  TrainStep(*trained.model, *trained.optimizer);

  struct rlimit limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &limit), 0);
  const struct rlimit full = {4096, limit.rlim_max};
  void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);  // EFBIG rather than a signal
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &full), 0);
  const absl::StatusOr<std::string> saved = Save(dir, trained, 2);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  signal(SIGXFSZ, handler);

  EXPECT_THAT(saved, StatusIs(absl::StatusCode::kResourceExhausted,
                              AllOf(HasSubstr(".safetensors: cannot write: File too large"),
                                    HasSubstr(dir + "/"))));
  std::vector<std::string> entries;
  for (const auto& entry : fs::directory_iterator(dir)) {
    entries.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(entries, std::vector<std::string>{"step-00000001"}) << "nothing partial is left";
  absl::StatusOr<CheckpointRef> newest = FindLatestValid(dir);
  ASSERT_OK(newest);
  EXPECT_EQ(newest->step, 1);

  Trained fresh = Train(0, false, 77);
  TrainerState state;
  absl::StatusOr<CheckpointRef> resumed = ResumeLatest(dir, *fresh.model, *fresh.optimizer, &state);
  ASSERT_OK(resumed);
  EXPECT_EQ(state.step, 1);
  ASSERT_OK(Save(dir, trained, 2));
  newest = FindLatestValid(dir);
  ASSERT_OK(newest);
  EXPECT_EQ(newest->step, 2);
}

}  // namespace
}  // namespace prolong::checkpoint
