// Kills a process that saves checkpoints in a loop with SIGKILL at random moments. After every
// kill the newest valid checkpoint must verify and never be older than the last save the
// helper reported complete; the next start of the helper must resume from exactly that
// checkpoint, and finds it equal, bitwise, to an uninterrupted run at its step.

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"
#include "trainer/checkpoint/checkpoint_store.h"

namespace prolong::checkpoint {
namespace {

namespace fs = std::filesystem;

constexpr char kHelper[] = "trainer/checkpoint/checkpoint_crash_helper";
constexpr int kKills = 8;

// The highest N of the "saved N" lines, or -1.
int64_t LastSaved(const std::string& output) {
  int64_t last = -1;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    int64_t step = 0;
    if (absl::ConsumePrefix(&line, "saved ") && absl::SimpleAtoi(line, &step)) {
      last = std::max(last, step);
    }
  }
  return last;
}

// "resumed N" -> N, "fresh" -> -1; nullopt for anything else.
std::optional<int64_t> ResumedStep(absl::string_view line) {
  int64_t step = 0;
  if (line == "fresh") return -1;
  if (absl::ConsumePrefix(&line, "resumed ") && absl::SimpleAtoi(line, &step)) return step;
  return std::nullopt;
}

TEST(CheckpointCrashTest, NewestValidCheckpointSurvivesSigkillAtRandomMoments) {
  const std::string dir = testing::MakeTempDir() + "/checkpoints";
  absl::BitGen random;
  int64_t last_complete = -1;  // the newest save the helper reported
  int64_t newest_valid = -1;   // what FindLatestValid returned after the last kill
  int interrupted_saves = 0;   // kills that left a save or a removal half done
  // The last start only checks that the helper resumes from the last kill's checkpoint.
  for (int start = 0; start <= kKills; ++start) {
    std::vector<std::string> argv = {kHelper, "--dir=" + dir};
    if (start % 3 == 2) argv.push_back("--resave");  // replaces a checkpoint under fire
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> helper = testing::Subprocess::Start(argv);
    ASSERT_OK(helper);

    // Mostly at a random moment among the saves; every fourth time anywhere from start-up on,
    // so that loading, resuming and cleaning up after the previous crash are hit too.
    const bool anywhere = start % 4 == 3;
    if (!anywhere) {
      absl::StatusOr<std::string> line = (*helper)->ReadStdoutLine(absl::Seconds(120));
      ASSERT_OK(line) << (*helper)->Stdout() << (*helper)->Stderr();
      ASSERT_EQ(ResumedStep(*line), newest_valid) << *line;
      if (start == kKills) break;
    }
    const absl::Duration delay = anywhere ? absl::Milliseconds(absl::Uniform(random, 1000, 4000))
                                          : absl::Milliseconds(absl::Uniform(random, 0, 500));
    SCOPED_TRACE(absl::StrCat("start ", start, ", killed after ", absl::FormatDuration(delay),
                              anywhere ? " from start-up" : " after resuming"));
    absl::SleepFor(delay);
    (*helper)->Signal(SIGKILL);
    absl::StatusOr<int> exit_code = (*helper)->Wait(absl::Seconds(30));
    ASSERT_OK(exit_code);
    const std::string output = (*helper)->Stdout();
    ASSERT_EQ(*exit_code, 128 + SIGKILL) << output << (*helper)->Stderr();
    if (anywhere && !output.empty()) {
      const std::string first_line = output.substr(0, output.find('\n'));
      if (ResumedStep(first_line).has_value()) {
        EXPECT_EQ(ResumedStep(first_line), newest_valid) << output;
      }
    }
    last_complete = std::max(last_complete, LastSaved(output));

    // As the next trainer will: clean up after the crash, then find the newest valid one.
    FindOptions find;
    find.remove_leftovers = true;
    ::testing::internal::CaptureStderr();
    absl::StatusOr<CheckpointRef> latest = FindLatestValid(dir, find);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("skipping"))) << "a step-N is damaged";
    if (absl::StrContains(log, "left over") || absl::StrContains(log, "replace")) {
      ++interrupted_saves;
    }
    if (last_complete < 0 && absl::IsNotFound(latest.status())) continue;
    ASSERT_OK(latest);
    EXPECT_GE(latest->step, last_complete) << "a save the helper reported complete was lost";
    newest_valid = latest->step;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      const std::string name = entry.path().filename().string();
      EXPECT_TRUE(ParseStepDirName(name).has_value()) << "left over: " << name;
    }
  }
  EXPECT_GT(last_complete, 0) << "the helper never completed a save";
  std::cout << kKills << " kills, " << interrupted_saves << " in the middle of a save or removal, "
            << "last complete save " << last_complete << std::endl;
}

}  // namespace
}  // namespace prolong::checkpoint
