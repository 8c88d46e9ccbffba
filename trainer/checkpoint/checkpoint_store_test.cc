#include "trainer/checkpoint/checkpoint_store.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/sha256.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "trainer/checkpoint/trainer_state.h"

namespace prolong::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::prolong::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Path(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

void Write(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// A committed checkpoint whose files stand in for the real ones; `tag` varies the contents.
std::string SaveFake(const std::string& dir, int64_t step, const std::string& tag = "",
                     int keep_last = 0) {
  absl::StatusOr<std::unique_ptr<CheckpointWriter>> writer = CheckpointWriter::Begin(dir, step);
  EXPECT_OK(writer);
  if (!writer.ok()) return "";
  const std::string staging = (*writer)->staging_dir();
  Write(Path(staging, "model/config.json"), absl::StrCat("{\"step\": ", step, "}"));
  Write(Path(staging, "model/model.safetensors"), std::string(1000, 'w') + tag);
  Write(Path(staging, "optimizer.safetensors"), std::string(3000, 'o') + tag);
  TrainerState state;
  state.step = step;
  Write(Path(staging, "trainer_state.json"), TrainerStateToJson(state));
  CommitOptions options;
  options.keep_last = keep_last;
  absl::StatusOr<std::string> path = (*writer)->Commit(options);
  EXPECT_OK(path);
  return path.ok() ? *path : "";
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void FlipByte(const std::string& path, int64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char byte = 0;
  file.read(&byte, 1);
  byte ^= 0x01;
  file.seekp(offset);
  file.write(&byte, 1);
  ASSERT_TRUE(file.good()) << path;
}

// FindLatestValid, with the warnings it logged.
struct Found {
  absl::StatusOr<CheckpointRef> result;
  std::string log;
};
Found Find(const std::string& dir, FindOptions options = {}) {
  ::testing::internal::CaptureStderr();
  absl::StatusOr<CheckpointRef> result = FindLatestValid(dir, options);
  return {std::move(result), ::testing::internal::GetCapturedStderr()};
}

TEST(StepDirNameTest, FormatsAndParses) {
  EXPECT_EQ(StepDirName(1234), "step-00001234");
  EXPECT_EQ(StepDirName(123456789), "step-123456789");
  EXPECT_EQ(ParseStepDirName("step-00001234"), 1234);
  EXPECT_EQ(ParseStepDirName("step-123456789"), 123456789);
  EXPECT_EQ(ParseStepDirName("step-"), std::nullopt);
  EXPECT_EQ(ParseStepDirName("step-12a"), std::nullopt);
  EXPECT_EQ(ParseStepDirName("step--1"), std::nullopt);
  EXPECT_EQ(ParseStepDirName(".tmp-step-00000001-abcd"), std::nullopt);
  EXPECT_EQ(ParseStepDirName("step-99999999999999999999"), std::nullopt);
}

TEST(ManifestTest, RoundTripsAndRejectsBadEntries) {
  Manifest manifest;
  manifest.step = 7;
  manifest.files = {{"model/config.json", 12, std::string(64, 'a')},
                    {"optimizer.safetensors", 0, std::string(64, '0')}};
  absl::StatusOr<Manifest> parsed = ParseManifest(ManifestToJson(manifest), "M");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->step, 7);
  EXPECT_EQ(parsed->files, manifest.files);

  auto error = [](const std::string& json) {
    return std::string(ParseManifest(json, "M").status().message());
  };
  const std::string head = R"({"format": "prolong.checkpoint.manifest", "version": 1, )";
  const std::string sha = std::string(64, 'b');
  EXPECT_THAT(error("{"), HasSubstr("M: not valid JSON"));
  EXPECT_THAT(error(R"({"format": "x", "version": 1, "step": 1, "files": []})"),
              HasSubstr("format"));
  EXPECT_THAT(error(R"({"format": "prolong.checkpoint.manifest", "version": 2, "step": 1,
                        "files": []})"),
              HasSubstr("unsupported version 2"));
  EXPECT_THAT(error(head + R"("step": -1, "files": []})"), HasSubstr("step"));
  EXPECT_THAT(error(head + R"("step": 1, "files": [{"path": "../x", "size": 1, "sha256": ")" + sha +
                    "\"}]}"),
              HasSubstr("\"../x\" is not a relative path inside the checkpoint"));
  EXPECT_THAT(error(head + R"("step": 1, "files": [{"path": "/etc/x", "size": 1, "sha256": ")" +
                    sha + "\"}]}"),
              HasSubstr("/etc/x"));
  EXPECT_THAT(error(head + R"("step": 1, "files": [{"path": "a", "size": 1, "sha256": "xyz"}]})"),
              HasSubstr("a: sha256 must be 64 lowercase hex digits"));
  EXPECT_THAT(
      error(head + R"("step": 1, "files": [{"path": "a", "size": -3, "sha256": ")" + sha + "\"}]}"),
      HasSubstr("a: size must be a non-negative integer"));
  EXPECT_THAT(error(head + R"("step": 1, "files": [{"path": "a", "size": 1, "sha256": ")" + sha +
                    R"("}, {"path": "a", "size": 1, "sha256": ")" + sha + "\"}]}"),
              HasSubstr("listed twice"));
}

TEST(TrainerStateTest, RoundTripsAndNamesBadKeys) {
  TrainerState state;
  state.step = 1234;
  state.stage_index = 1;
  state.stage_name = "stage2-512k";
  state.schedule = {{"stage_step", "34"}, {"lr", "5e-06"}};
  state.data_cursor = {{"plan_id", "p-1"}, {"global_step", "1234"}, {"seed", "42"}};
  state.rng.torch_cpu = std::string("\x00\x01\xff raw bytes", 14);
  state.rng.torch_cuda = {"gpu0", std::string("\x00\x02", 2)};
  state.run.run_name = "prolong-8b";
  state.run.dp_size = 8;
  state.run.cp_size = 4;
  state.run.versions = {{"torch", "1.13.1"}};
  state.elapsed_seconds = 3600.125;
  state.saved_at = "2026-11-27T05:11:04Z";
  absl::StatusOr<TrainerState> parsed = ParseTrainerState(TrainerStateToJson(state), "S");
  ASSERT_OK(parsed);
  EXPECT_EQ(*parsed, state);

  auto error = [](const std::string& json) {
    return std::string(ParseTrainerState(json, "S").status().message());
  };
  EXPECT_THAT(error("[]"), HasSubstr("S: not a JSON object"));
  EXPECT_THAT(error(R"({"step": 1})"), HasSubstr("S: format_version is missing"));
  EXPECT_THAT(error(R"({"format_version": 9, "step": 1})"), HasSubstr("newer than this reader"));
  EXPECT_THAT(error(R"({"format_version": 1})"), HasSubstr("S: step is missing"));
  EXPECT_THAT(error(R"({"format_version": 1, "step": "3"})"), HasSubstr("S: step must be"));
  EXPECT_THAT(error(R"({"format_version": 1, "step": 3, "data_cursor": {"a": 1}})"),
              HasSubstr("S: data_cursor.a must be a string"));
  EXPECT_THAT(error(R"({"format_version": 1, "step": 3, "rng": {"torch_cpu": "!!"}})"),
              HasSubstr("S: rng.torch_cpu must be a base64 string"));
  EXPECT_THAT(error(R"({"format_version": 1, "step": 3, "run": {"dp_size": 0}})"),
              HasSubstr("S: run.dp_size must be an integer >= 1"));
  // Unknown keys (from a newer writer) are ignored.
  EXPECT_OK(ParseTrainerState(R"({"format_version": 1, "step": 3, "new_key": [1]})", "S"));
}

TEST(CheckpointWriterTest, CommitsCompleteCheckpointWithManifest) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  const std::string path = SaveFake(dir, 1234);
  EXPECT_EQ(path, Path(dir, "step-00001234"));
  EXPECT_THAT(Entries(dir), ElementsAre("step-00001234"));  // no staging directory left
  EXPECT_OK(VerifyCheckpoint(path));

  absl::StatusOr<std::string> text = ReadFile(Path(path, kManifestFile));
  ASSERT_OK(text);
  absl::StatusOr<Manifest> manifest = ParseManifest(*text, "M");
  ASSERT_OK(manifest);
  EXPECT_EQ(manifest->step, 1234);
  std::vector<std::string> paths;
  for (const ManifestEntry& entry : manifest->files) paths.push_back(entry.path);
  EXPECT_THAT(paths, ElementsAre("model/config.json", "model/model.safetensors",
                                 "optimizer.safetensors", "trainer_state.json"));
  EXPECT_EQ(manifest->files[2].size, 3000);
  Sha256 hasher;
  hasher.Update(std::string(3000, 'o'));
  EXPECT_EQ(manifest->files[2].sha256, absl::BytesToHexString(hasher.Finish()));

  absl::StatusOr<TrainerState> state = ReadTrainerState(path);
  ASSERT_OK(state);
  EXPECT_EQ(state->step, 1234);
}

TEST(CheckpointWriterTest, AbandonedWriterLeavesNothing) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  {
    absl::StatusOr<std::unique_ptr<CheckpointWriter>> writer = CheckpointWriter::Begin(dir, 3);
    ASSERT_OK(writer);
    Write(Path((*writer)->staging_dir(), "optimizer.safetensors"), "partial");
  }
  EXPECT_TRUE(Entries(dir).empty());
  EXPECT_FALSE(CheckpointWriter::Begin(dir, -1).ok());
}

TEST(CheckpointWriterTest, ResavingAStepReplacesIt) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  SaveFake(dir, 5, "first");
  const std::string path = SaveFake(dir, 5, "second-and-longer");
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000005"));
  EXPECT_OK(VerifyCheckpoint(path));
  absl::StatusOr<std::string> optimizer = ReadFile(Path(path, "optimizer.safetensors"));
  ASSERT_OK(optimizer);
  EXPECT_THAT(*optimizer, ::testing::EndsWith("second-and-longer"));
}

TEST(FindLatestValidTest, ReturnsNewestAndNotFoundWhenNone) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  EXPECT_THAT(FindLatestValid(dir), StatusIs(absl::StatusCode::kNotFound));
  SaveFake(dir, 2);
  SaveFake(dir, 10);
  SaveFake(dir, 9);
  fs::create_directories(Path(dir, "not-a-checkpoint"));
  absl::StatusOr<CheckpointRef> latest = FindLatestValid(dir);
  ASSERT_OK(latest);
  EXPECT_EQ(latest->step, 10);
  EXPECT_EQ(latest->path, Path(dir, "step-00000010"));
  absl::StatusOr<std::vector<CheckpointRef>> all = ListCheckpoints(dir);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].step, 2);
  EXPECT_EQ((*all)[2].step, 10);
}

TEST(FindLatestValidTest, SkipsFlippedByteWithWarning) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  SaveFake(dir, 1);
  const std::string newest = SaveFake(dir, 2);
  FlipByte(Path(newest, "model/model.safetensors"), 500);

  Found found = Find(dir);
  ASSERT_OK(found.result);
  EXPECT_EQ(found.result->step, 1);
  EXPECT_THAT(found.log, HasSubstr("skipping checkpoint " + newest +
                                   ": model/model.safetensors: checksum "
                                   "mismatch (SHA-256 "));
  EXPECT_THAT(VerifyCheckpoint(newest), StatusIs(absl::StatusCode::kDataLoss));
  // Sizes only cannot see a flipped byte: the documented trade-off.
  EXPECT_OK(VerifyCheckpoint(newest, Verification::kSizesOnly));
  // Nothing was modified or deleted.
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000001", "step-00000002"));
}

TEST(FindLatestValidTest, SkipsTruncatedFile) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  SaveFake(dir, 1);
  const std::string newest = SaveFake(dir, 2);
  fs::resize_file(Path(newest, "optimizer.safetensors"), 100);

  for (Verification verification : {Verification::kFull, Verification::kSizesOnly}) {
    FindOptions options;
    options.verification = verification;
    Found found = Find(dir, options);
    ASSERT_OK(found.result);
    EXPECT_EQ(found.result->step, 1);
    EXPECT_THAT(found.log, HasSubstr("skipping checkpoint " + newest +
                                     ": optimizer.safetensors has 100 bytes, the manifest says "
                                     "3000"));
  }
}

TEST(FindLatestValidTest, SkipsMissingManifestMissingFileAndBadManifest) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  SaveFake(dir, 1);
  const std::string no_manifest = SaveFake(dir, 2);
  const std::string no_file = SaveFake(dir, 3);
  const std::string bad_manifest = SaveFake(dir, 4);
  const std::string wrong_step = SaveFake(dir, 5);
  fs::remove(Path(no_manifest, kManifestFile));
  fs::remove(Path(no_file, "trainer_state.json"));
  Write(Path(bad_manifest, kManifestFile), "{\"format\": ");
  fs::rename(Path(dir, "step-00000005"), Path(dir, "step-00000006"));
  const std::string renamed = Path(dir, "step-00000006");

  Found found = Find(dir);
  ASSERT_OK(found.result);
  EXPECT_EQ(found.result->step, 1);
  EXPECT_THAT(found.log, HasSubstr(renamed + ": MANIFEST.json is for step 5"));
  EXPECT_THAT(found.log, HasSubstr(bad_manifest + ": MANIFEST.json: not valid JSON"));
  EXPECT_THAT(found.log, HasSubstr(no_file + ": missing file trainer_state.json"));
  EXPECT_THAT(found.log, HasSubstr(no_manifest + ": missing file MANIFEST.json"));

  fs::remove_all(Path(dir, "step-00000001"));
  found = Find(dir);
  EXPECT_THAT(found.result,
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no valid checkpoint in " + dir)));
}

TEST(FindLatestValidTest, ManifestMustListTheTrainingFiles) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  absl::StatusOr<std::unique_ptr<CheckpointWriter>> writer = CheckpointWriter::Begin(dir, 1);
  ASSERT_OK(writer);
  Write(Path((*writer)->staging_dir(), "trainer_state.json"), "{}");
  absl::StatusOr<std::string> path = (*writer)->Commit();
  ASSERT_OK(path);
  EXPECT_THAT(VerifyCheckpoint(*path).message(), HasSubstr("does not list model/config.json"));
}

TEST(FindLatestValidTest, LeftoverTemporaryIsIgnoredThenCleanedUp) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  SaveFake(dir, 1);
  // A save of step 2 that died before its rename: complete-looking files, even a manifest.
  const std::string leftover = Path(dir, ".tmp-step-00000002-deadbeef");
  fs::copy(Path(dir, "step-00000001"), leftover, fs::copy_options::recursive);

  Found found = Find(dir);  // a reader: looks, removes nothing
  ASSERT_OK(found.result);
  EXPECT_EQ(found.result->step, 1);
  EXPECT_TRUE(fs::exists(leftover));

  FindOptions writer;
  writer.remove_leftovers = true;
  found = Find(dir, writer);
  ASSERT_OK(found.result);
  EXPECT_EQ(found.result->step, 1);
  EXPECT_THAT(found.log, HasSubstr("removing " + leftover + ", left over from an interrupted"));
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000001"));

  // The next save cleans up too.
  fs::create_directories(Path(leftover, "model"));
  ::testing::internal::CaptureStderr();
  SaveFake(dir, 2);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("removing " + leftover));
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000001", "step-00000002"));
}

TEST(RecoverDirectoryTest, FinishesOrUndoesAnInterruptedReplacement) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  SaveFake(dir, 4);
  SaveFake(dir, 7);
  // Crash after step 7 was renamed away, before its replacement was renamed in.
  fs::rename(Path(dir, "step-00000007"), Path(dir, ".replaced-step-00000007-0badf00d"));
  // Crash after step 4's replacement was renamed in, before the old one was removed.
  fs::copy(Path(dir, "step-00000004"), Path(dir, ".replaced-step-00000004-12345678"),
           fs::copy_options::recursive);

  ::testing::internal::CaptureStderr();
  ASSERT_OK(RecoverDirectory(dir));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("restoring " + Path(dir, "step-00000007")));
  EXPECT_THAT(log, HasSubstr("removing " + Path(dir, ".replaced-step-00000004-12345678")));
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000004", "step-00000007"));
  EXPECT_OK(VerifyCheckpoint(Path(dir, "step-00000007")));
}

TEST(RetentionTest, KeepsExactlyTheLastK) {
  const std::string dir = Path(testing::MakeTempDir(), "ckpt");
  for (int64_t step = 1; step <= 6; ++step) SaveFake(dir, step * 10, "", /*keep_last=*/3);
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000040", "step-00000050", "step-00000060"));

  // keep_last <= 0 keeps everything.
  SaveFake(dir, 70, "", 0);
  EXPECT_EQ(Entries(dir).size(), 4u);

  // After a rollback to 40, a new 45 keeps itself and the newest below it; 50+ stay for the
  // operator to judge.
  SaveFake(dir, 45, "", 2);
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000040", "step-00000045", "step-00000050",
                                        "step-00000060", "step-00000070"));
  ASSERT_OK(ApplyRetention(dir, 70, 1));
  EXPECT_THAT(Entries(dir), ElementsAre("step-00000070"));
}

}  // namespace
}  // namespace prolong::checkpoint
