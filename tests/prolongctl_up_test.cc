// `prolongctl up`: the embedded stack as an operator starts it. It prints each service's
// addresses, the scheduler answers `prolongctl run`, and Ctrl-C (SIGINT) stops all three
// cleanly; without a store or a tokenizer to create one it says what to pass.

#include <signal.h>

#include <fstream>
#include <map>
#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/http_get.h"
#include "common/status_matchers.h"
#include "datamixer/tokenizer/test_ranks.h"
#include "gtest/gtest.h"
#include "tests/subprocess.h"

namespace prolong {
namespace {

using testing::Subprocess;

constexpr char kProlongctl[] = "services/prolongctl/prolongctl";

TEST(ProlongctlUpTest, StartsTheStackAndStopsItOnCtrlC) {
  const std::string home = testing::MakeTempDir();
  std::ofstream(home + "/tiny.tiktoken", std::ios::binary)
      << tokenizer::ByteRankFile({"ab", "e ", "th"});
  auto up = Subprocess::Start({kProlongctl, "up", "--home=" + home, "--port-base=0",
                               "--tokenizer=" + home + "/tiny.tiktoken", "--preset=llama3"});
  ASSERT_OK(up);
  // "NAME grpc HOST:PORT metrics http://HOST:PORT/metrics log FILE", one line per service.
  std::map<std::string, std::pair<std::string, std::string>> addresses;
  const std::regex pattern(R"((\w+) +grpc (\S+) +metrics http://(\S+)/metrics +log (\S+))");
  while (addresses.size() < 3) {
    auto line = (*up)->ReadStdoutLine(absl::Seconds(120));
    ASSERT_OK(line) << (*up)->Stderr();
    std::smatch match;
    if (!std::regex_match(*line, match, pattern)) continue;
    addresses[match[1].str()] = {match[2].str(), match[3].str()};
    EXPECT_EQ(match[4].str(), absl::StrCat(home, "/logs/", match[1].str(), ".log"));
  }
  for (const char* name : {"scheduler", "datamixer", "evaluator"}) {
    ASSERT_EQ(addresses.count(name), 1u) << name;
    auto metrics = HttpGet(addresses[name].second, "/metrics");
    ASSERT_OK(metrics);
    EXPECT_TRUE(absl::StrContains(*metrics, absl::StrCat("component=\"", name, "\""))) << *metrics;
  }
  const std::string scheduler = addresses["scheduler"].first;
  auto listed =
      testing::Run({kProlongctl, "run", "--scheduler=" + scheduler, "list"}, absl::Seconds(30));
  ASSERT_OK(listed);
  EXPECT_EQ(listed->exit_code, 0) << listed->stderr_text;
  EXPECT_TRUE(absl::StartsWith(listed->stdout_text, "RUN")) << listed->stdout_text;

  (*up)->Signal(SIGINT);
  auto exit_code = (*up)->Wait(absl::Seconds(30));
  ASSERT_OK(exit_code);
  EXPECT_EQ(*exit_code, 0) << (*up)->Stderr();
  EXPECT_TRUE(absl::StrContains((*up)->Stdout(), "stack stopped\n")) << (*up)->Stdout();
  // Nothing answers any more.
  listed =
      testing::Run({kProlongctl, "run", "--scheduler=" + scheduler, "list"}, absl::Seconds(30));
  ASSERT_OK(listed);
  EXPECT_EQ(listed->exit_code, 2) << listed->stdout_text;
  EXPECT_FALSE(HttpGet(addresses["datamixer"].second, "/metrics").ok());
}

TEST(ProlongctlUpTest, WithoutAStoreOrATokenizerItSaysWhatToPass) {
  const std::string home = testing::MakeTempDir();
  auto result =
      testing::Run({kProlongctl, "up", "--home=" + home, "--port-base=0"}, absl::Seconds(30));
  ASSERT_OK(result);
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->stderr_text,
            absl::StrCat("prolongctl up: no store at ", home,
                         "/store and no tokenizer to create one with: pass --tokenizer (and "
                         "--preset), or put cl100k_base.tiktoken in ",
                         home, " (tools/run_local.sh does)\n"));
}

}  // namespace
}  // namespace prolong
