#include "trainer/checkpoint/model_source.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/trainer_state.h"

namespace prolong::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::prolong::testing::StatusIs;
using ::testing::HasSubstr;

void Write(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
}

// A committed training checkpoint whose model files hold `weights`.
std::string SaveCheckpoint(const std::string& dir, int64_t step, const std::string& weights) {
  auto writer = CheckpointWriter::Begin(dir, step);
  EXPECT_OK(writer);
  const std::string staging = (*writer)->staging_dir();
  Write(staging + "/model/config.json", "{\"model_type\": \"llama\"}");
  Write(staging + "/model/model.safetensors", weights);
  Write(staging + "/optimizer.safetensors", std::string(100, 'o'));
  TrainerState state;
  state.step = step;
  Write(staging + "/trainer_state.json", TrainerStateToJson(state));
  auto path = (*writer)->Commit();
  EXPECT_OK(path);
  return *path;
}

TEST(ModelSourceTest, TakesAModelDirectoryACheckpointOrTheNewestOfADirectory) {
  const std::string root = prolong::testing::MakeTempDir();
  Write(root + "/hf/config.json", "{}");
  ASSERT_OK_AND_ASSIGN(ModelSource hf, ResolveModelSource(root + "/hf", Verification::kFull));
  EXPECT_EQ(hf.model_dir, root + "/hf");
  EXPECT_EQ(hf.training_checkpoint, "");

  const std::string step2 = SaveCheckpoint(root + "/ckpt", 2, "two");
  const std::string step5 = SaveCheckpoint(root + "/ckpt", 5, "five");
  ASSERT_OK_AND_ASSIGN(ModelSource one, ResolveModelSource(step2, Verification::kFull));
  EXPECT_EQ(one.training_checkpoint, step2);
  EXPECT_EQ(one.model_dir, step2 + "/model");
  ASSERT_OK_AND_ASSIGN(ModelSource newest, ResolveModelSource(root + "/ckpt", Verification::kFull));
  EXPECT_EQ(newest.training_checkpoint, step5);

  fs::create_directories(root + "/empty");
  EXPECT_THAT(ResolveModelSource(root + "/empty", Verification::kFull),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("neither a Hugging Face model directory (config.json)")));
  EXPECT_THAT(ResolveModelSource(root + "/absent", Verification::kFull),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent: not a directory")));
}

TEST(ModelSourceTest, ACorruptCheckpointIsDataLossNamingTheFile) {
  const std::string root = prolong::testing::MakeTempDir();
  const std::string step = SaveCheckpoint(root, 1, "weights");
  Write(step + "/model/model.safetensors", "weightz");  // same size, one byte changed
  EXPECT_THAT(ResolveModelSource(step, Verification::kFull),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model/model.safetensors")));
  EXPECT_OK(ResolveModelSource(step, Verification::kSizesOnly));
}

TEST(ModelSourceTest, TheFingerprintFollowsTheModelFilesOnly) {
  const std::string root = prolong::testing::MakeTempDir();
  const std::string step = SaveCheckpoint(root + "/ckpt", 3, "weights");
  ASSERT_OK_AND_ASSIGN(const std::string from_manifest, ModelFingerprint({step + "/model", step}));
  EXPECT_EQ(from_manifest.size(), 64u);

  // The same model directory copied elsewhere, with a file that is not the model's.
  fs::copy(step + "/model", root + "/copy");
  Write(root + "/copy/README.md", "notes");
  ASSERT_OK_AND_ASSIGN(const std::string from_files, ModelFingerprint({root + "/copy", ""}));
  EXPECT_EQ(from_files, from_manifest);

  Write(root + "/copy/model.safetensors", "weightz");
  ASSERT_OK_AND_ASSIGN(const std::string changed, ModelFingerprint({root + "/copy", ""}));
  EXPECT_NE(changed, from_manifest);
  EXPECT_THAT(ModelFingerprint({root + "/nothing", ""}), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace prolong::checkpoint
