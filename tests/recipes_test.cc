// The recipes in recipes/ as an operator submits them: a real datamixer over a store that holds
// every domain they name, a real scheduler that allows paths under /data/models and /data/runs
// (where the recipes put the model, the tokenizer and the checkpoints), and
// `prolongctl run submit --dry-run`.
//
// Why every stage is planned twice. The store is a few MB of documents, and a dry run asks the
// datamixer for each stage's full plan: 20,000 x 2^20 tokens do not fit in one reading of it.
// The recipes say `allow_repetition: false` (in production a domain too small for its share is
// refused, not silently read again), so
//   - each recipe as written passes the scheduler's spec check (CheckRunSpec, with the roots the
//     scheduler allows) and, submitted as a dry run, reaches the datamixer, which refuses the
//     first stage with the shortfall and the advice to allow repetition: only the data's size;
//   - a copy whose one change is `allow_repetition: true` in every stage (the after-SFT stage
//     too) is planned in full, and its plans print. A plan's steps and each domain's sequences
//     and tokens follow from the stage spec alone (exact mixing): they are what a full-size
//     store gives; only the epochs (how often a domain is read) are the tiny store's.
// The ablations must also differ from each other only in what they vary: the same seed, model,
// optimizer, resources, evaluation and fault policy, and stage 1 of the length ablations the same
// plan as the data-mix baseline's.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/file.h"
#include "common/proto_file.h"
#include "common/status_macros.h"
#include "common/status_matchers.h"
#include "datamixer/store/store.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "prolong/v1/run_spec.pb.h"
#include "scheduler/run_spec_check.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"

namespace prolong {
namespace {

using google::protobuf::util::MessageDifferencer;
using testing::ServiceProcess;

constexpr char kRecipe[] = "recipes/prolong-8b.yaml";
constexpr char kAblations[] = "recipes/ablations";
constexpr char kReadme[] = "recipes/README.md";
// ProLong's 8B at 64K on 8 x H100 (paper, Table 15).
constexpr char kTokensPerSecondPerGpu[] = "3095";

// One domain of the store: `count` documents of `length` tokens.
struct DomainShape {
  const char* name;
  int count;
  int64_t length;
};

// Every domain the recipes name, each large enough to fill at least one sequence of every
// length it is packed at: long domains hold whole 64K or 512K chunks, short ones at least 512K
// tokens (stage 2 packs them into 512K sequences), the 64K code and books at least 512K tokens
// in documents of 64K (stage 2 short-packs them).
constexpr DomainShape kDomains[] = {
    {"code-repos", 9, 65536},  {"books", 9, 65536},          {"code-repos-512k", 2, 524288},
    {"books-512k", 2, 524288}, {"textbooks", 10, 60000},     {"fineweb-edu", 120, 5000},
    {"fineweb", 120, 5000},    {"stackexchange", 120, 5000}, {"wikipedia", 120, 5000},
    {"tulu-v2", 120, 5000},    {"arxiv", 120, 5000},         {"openwebmath", 120, 5000},
    {"ultrachat", 300, 2000},
};

absl::Status WriteStore(const std::string& dir) {
  ASSIGN_OR_RETURN(auto store, store::Store::OpenForWriting(dir, {"llama3-shaped-test", 128256}));
  std::mt19937_64 random(11);
  for (const DomainShape& domain : kDomains) {
    std::vector<store::Document> documents;
    for (int i = 0; i < domain.count; ++i) {
      store::Document document{domain.name, absl::StrCat(domain.name, "/", i), {}, ""};
      document.tokens.resize(domain.length);
      for (uint32_t& token : document.tokens) token = static_cast<uint32_t>(random() % 128000);
      documents.push_back(std::move(document));
    }
    RETURN_IF_ERROR(store->shard().AddBatch(documents).status());
  }
  return absl::OkStatus();
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  EXPECT_OK(text) << path;
  return text.ok() ? *text : "";
}

std::vector<std::string> AblationFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kAblations)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// How `a` differs from `b`, field by field; empty when they are equal.
std::string Diff(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  std::string report;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  differencer.Compare(a, b);
  return report;
}

v1::RunSpec Spec(const std::string& path) {
  v1::RunSpec spec;
  EXPECT_OK(ReadProtoFile(path, &spec));
  return spec;
}

// The services every test shares: the store, one datamixer, one scheduler.
struct Stack {
  std::string dir;
  ServiceProcess datamixer;
  ServiceProcess scheduler;
};

Stack& Shared() {
  static Stack* stack = [] {
    auto* s = new Stack;
    s->dir = testing::MakeTempDir();
    EXPECT_OK(WriteStore(s->dir + "/store"));
    auto datamixer =
        testing::StartService({testing::kDatamixerBinary, "--store=" + s->dir + "/store",
                               "--address=127.0.0.1:0", "--metrics-address=off"});
    EXPECT_OK(datamixer);
    if (datamixer.ok()) s->datamixer = *std::move(datamixer);
    // A dry run launches nothing: any executable does as the trainer.
    auto scheduler =
        testing::StartService({testing::kSchedulerBinary, "--state-dir=" + s->dir + "/scheduler",
                               "--address=127.0.0.1:0", "--metrics-address=off",
                               "--trainer-binary=/bin/true", "--datamixer=" + s->datamixer.address,
                               "--allowed-root=/data/models", "--allowed-root=/data/runs"});
    EXPECT_OK(scheduler);
    if (scheduler.ok()) s->scheduler = *std::move(scheduler);
    return s;
  }();
  return *stack;
}

// `prolongctl run submit SPEC --dry-run --tokens-per-second-per-gpu N`.
testing::RunResult DryRun(const std::string& spec_path) {
  auto result =
      testing::Run({testing::kProlongctlBinary, "run", "--scheduler=" + Shared().scheduler.address,
                    "submit", spec_path, "--dry-run",
                    absl::StrCat("--tokens-per-second-per-gpu=", kTokensPerSecondPerGpu)},
                   absl::Seconds(240));
  EXPECT_OK(result);
  return result.ok() ? *result : testing::RunResult();
}

// The recipe with `allow_repetition: true` in each of its `stages` stages and its after-SFT
// stage, and nothing else changed.
std::string WithRepetition(const std::string& path, int stages) {
  std::string text = Read(path);
  const int replaced =
      absl::StrReplaceAll({{"allow_repetition: false", "allow_repetition: true"}}, &text);
  EXPECT_EQ(replaced, stages + 1) << path << ": every stage should say allow_repetition: false";
  const std::string copy = Shared().dir + "/" + std::filesystem::path(path).filename().string();
  std::ofstream(copy) << text;
  return copy;
}

// As written: the scheduler's spec check finds nothing (with the roots the test's scheduler
// allows), and the dry run stops at the datamixer, which finds the store too small for stage 1.
void ExpectOnlyTheDataIsTooSmall(const std::string& path) {
  for (const scheduler::SpecProblem& problem :
       scheduler::CheckRunSpec(Spec(path), {{"/data/models", "/data/runs"}})) {
    ADD_FAILURE() << path << ": " << problem.field << ": " << problem.message;
  }
  const testing::RunResult result = DryRun(path);
  EXPECT_EQ(result.exit_code, 1) << path << "\n" << result.stdout_text << result.stderr_text;
  EXPECT_TRUE(std::regex_search(
      result.stderr_text,
      std::regex(
          R"(stages\[0\]: datamixer \S+: stage\.mixture\[\d+\] \(domain [a-z-]+\): the )"
          R"(stage needs \d+ sequences of 65536 tokens from it, one epoch holds \d+: short by)")))
      << result.stderr_text;
  EXPECT_TRUE(absl::StrContains(result.stderr_text, "set stage.allow_repetition"))
      << result.stderr_text;
}

bool HasLine(const std::string& output, const std::string& pattern) {
  return std::regex_search(output, std::regex("(^|\n)" + pattern + "(\n|$)"));
}

// "plan ID" of the stage line that starts with `stage_prefix`.
std::string PlanId(const std::string& output, const std::string& stage_prefix) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex(stage_prefix + R"([^\n]*; plan (\w+))"))) {
    return "";
  }
  return match[1].str();
}

TEST(RecipesTest, Prolong8bPlansEveryStageWithItsEstimatedTime) {
  ExpectOnlyTheDataIsTooSmall(kRecipe);

  const testing::RunResult result = DryRun(WithRepetition(kRecipe, 2));
  ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
  std::cout << result.stdout_text;
  const std::string& out = result.stdout_text;
  EXPECT_TRUE(HasLine(out, R"(stage 1/2 stage1-64k: 5000 steps of 64 sequences x 65536 tokens = )"
                           R"(20971520000 tokens; 8 ranks \(dp 8 x cp 1\); plan \w+)"))
      << out;
  EXPECT_TRUE(HasLine(out, R"(stage 2/2 stage2-512k: 2500 steps of 16 sequences x 524288 tokens )"
                           R"(= 20971520000 tokens; 8 ranks \(dp 1 x cp 8\); plan \w+)"))
      << out;
  // Stage 1's 320,000 sequences and stage 2's 40,000, split exactly by the mixture.
  for (const std::string& line : {
           R"(  code-repos +6291456000 tokens +30\.00%.*)",
           R"(  books +6291456000 tokens +30\.00%.*)",
           R"(  textbooks +629145600 tokens +3\.00%.*)",
           R"(  fineweb-edu +2097152000 tokens +10\.00%.*)",
           R"(  wikipedia +838860800 tokens +4\.00%.*)",
           R"(  openwebmath +629145600 tokens +3\.00%.*)",
           R"(  code-repos-512k +3145728000 tokens +15\.00%.*)",
           R"(  code-repos +3145728000 tokens +15\.00%.*)",
           R"(  books-512k +1048576000 tokens +5\.00%.*)",
           R"(  books +5242880000 tokens +25\.00%.*)",
           R"(  fineweb +2097152000 tokens +10\.00%.*)",
       }) {
    EXPECT_TRUE(HasLine(out, line)) << line << "\n" << out;
  }
  // 20,971,520,000 tokens / (3095 tokens/s x 8 GPUs) = 847k s a stage.
  EXPECT_TRUE(HasLine(out, "  estimated time: 9d19h at 3095 tokens/s per GPU")) << out;
  EXPECT_TRUE(HasLine(out, "estimated total: 19d14h")) << out;

  // The dry run plans the after-SFT stage too: without its chat domain the run is refused.
  const std::string no_chat = Shared().dir + "/no-chat.yaml";
  std::ofstream(no_chat) << absl::StrReplaceAll(Read(WithRepetition(kRecipe, 2)),
                                                {{"domain: ultrachat", "domain: no-such-chat"}});
  const testing::RunResult refused = DryRun(no_chat);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.stderr_text, "evaluation.after_sft.stage: datamixer "))
      << refused.stderr_text;
}

TEST(RecipesTest, EveryAblationPlans) {
  const std::vector<std::string> files = AblationFiles();
  ASSERT_EQ(files.size(), 7u);
  std::map<std::string, std::string> stage1_plans;
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    const int stages = Spec(path).stages_size();
    ExpectOnlyTheDataIsTooSmall(path);
    const testing::RunResult result = DryRun(WithRepetition(path, stages));
    ASSERT_EQ(result.exit_code, 0) << result.stderr_text;
    const std::string& out = result.stdout_text;
    EXPECT_TRUE(HasLine(
        out,
        absl::StrCat(R"(stage 1/)", stages, R"( stage1-64k: 1250 steps of 64 sequences x 65536 )",
                     R"(tokens = 5242880000 tokens; 8 ranks \(dp 8 x cp 1\); )", R"(plan \w+)")))
        << out;
    if (stages == 2) {
      EXPECT_TRUE(HasLine(out, R"(stage 2/2 stage2-(64k: 625 steps of 128 sequences x 65536 )"
                               R"(tokens = 5242880000 tokens; 8 ranks \(dp 8 x cp 1\)|512k: 625 )"
                               R"(steps of 16 sequences x 524288 tokens = 5242880000 tokens; 8 )"
                               R"(ranks \(dp 1 x cp 8\)); plan \w+)"))
          << out;
    }
    stage1_plans[std::filesystem::path(path).stem().string()] = PlanId(out, "stage 1/");
  }
  // Both length runs train the baseline's stage 1, to the token.
  EXPECT_FALSE(stage1_plans["mix-code-books"].empty());
  EXPECT_EQ(stage1_plans["length-64k"], stage1_plans["mix-code-books"]);
  EXPECT_EQ(stage1_plans["length-512k"], stage1_plans["mix-code-books"]);
  EXPECT_NE(stage1_plans["mix-code"], stage1_plans["mix-code-books"]);
}

TEST(RecipesTest, AblationsDifferOnlyInWhatTheyVary) {
  const v1::RunSpec recipe = Spec(kRecipe);
  const v1::RunSpec baseline = Spec(std::string(kAblations) + "/mix-code-books.yaml");
  std::set<std::string> names, directories;
  for (const std::string& path : AblationFiles()) {
    SCOPED_TRACE(path);
    v1::RunSpec spec = Spec(path);
    EXPECT_TRUE(names.insert(spec.name()).second) << spec.name();
    EXPECT_TRUE(directories.insert(spec.checkpoint().directory()).second);
    // What the full recipe and every ablation share: the model, seed, optimizer, node, HELMET
    // evaluation and the SFT before it.
    EXPECT_EQ(spec.seed(), recipe.seed());
    EXPECT_EQ(Diff(spec.model(), recipe.model()), "");
    EXPECT_EQ(Diff(spec.optimizer(), recipe.optimizer()), "");
    EXPECT_EQ(Diff(spec.resources(), recipe.resources()), "");
    EXPECT_EQ(Diff(spec.evaluation(), recipe.evaluation()), "");
    EXPECT_EQ(Diff(spec.fault(), baseline.fault()), "");
    EXPECT_EQ(spec.checkpoint().every_steps(), baseline.checkpoint().every_steps());
    EXPECT_EQ(spec.checkpoint().keep_last(), baseline.checkpoint().keep_last());
    // Stage 1 differs from the baseline's in its mixture at most.
    v1::StageSpec stage = spec.stages(0), reference = baseline.stages(0);
    const bool same_mixture = MessageDifferencer::Equals(stage, reference);
    stage.clear_mixture();
    reference.clear_mixture();
    EXPECT_EQ(Diff(stage, reference), "");
    // The length ablations vary stage 2 only; the others their stage 1's mixture.
    if (spec.stages_size() == 2) {
      EXPECT_TRUE(same_mixture);
    } else if (spec.name() != baseline.name()) {
      EXPECT_FALSE(same_mixture);
    }
  }
}

TEST(RecipesTest, TheReadmeListsEveryRecipe) {
  const std::string readme = Read(kReadme);
  EXPECT_TRUE(absl::StrContains(readme, "prolong-8b.yaml"));
  for (const std::string& path : AblationFiles()) {
    const std::string name = "ablations/" + std::filesystem::path(path).filename().string();
    EXPECT_TRUE(absl::StrContains(readme, name)) << name;
  }
  std::smatch match;
  std::string rest = readme;
  while (std::regex_search(rest, match, std::regex(R"(ablations/[a-z0-9-]+\.yaml)"))) {
    EXPECT_TRUE(std::filesystem::exists("recipes/" + match[0].str())) << match[0].str();
    rest = match.suffix();
  }
}

}  // namespace
}  // namespace prolong
