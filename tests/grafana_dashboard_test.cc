// The Grafana dashboard in deploy/grafana: its JSON has the shape Grafana provisions (panels with
// unique ids and places on the 24-column grid, Prometheus targets with a refId and an expr, every
// datasource the provisioned one), and every panel's query, with the dashboard's template
// variables substituted as Grafana does, returns data from a real Prometheus 2.42 scraping a
// real scheduler, datamixer and evaluator while a run of a tiny Llama trains on two local
// workers and right after, when its last checkpoint has been evaluated.
//
// Panels that legitimately return nothing on a CPU are listed in EmptyHere() with the reason; each
// is still sent to Prometheus, must be answered with status "success", and must stay empty.

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file.h"
#include "common/status_matchers.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/prometheus_server.h"
#include "tests/subprocess.h"
#include "tests/training_stack.h"
#include "yaml-cpp/yaml.h"

namespace prolong {
namespace {

using testing::Eventually;
using testing::kPrometheusBinary;
using testing::Prometheus;
using testing::ServiceProcess;

constexpr char kDashboard[] = "deploy/grafana/prolong.json";
constexpr char kDatasources[] = "deploy/grafana/provisioning/datasources/prometheus.yml";
constexpr char kDashboardProviders[] = "deploy/grafana/provisioning/dashboards/prolong.yml";

// Panels (by title) whose queries return no series when the workers train on a CPU, and why.
const std::map<std::string, std::string>& EmptyHere() {
  static const auto* const kEmptyHere = new std::map<std::string, std::string>{
      {"MFU",
       "workers report no MFU where the device's peak is unknown, a CPU's included (the scheduler "
       "then exports no prolong_scheduler_run_mfu rather than a 0 that reads as measured)"},
  };
  return *kEmptyHere;
}

// Grafana sets $__rate_interval to at least four scrape intervals of the datasource (its
// timeInterval), so that a rate always spans two samples; the test's Prometheus scrapes every
// testing::kScrapeSeconds.
static_assert(testing::kScrapeSeconds == 1, "kRateInterval is four scrape intervals");
constexpr char kRateInterval[] = "4s";

// 80 steps of 64 sequences of 128 tokens on two workers: about ten seconds of training on two
// idle cores, several scrapes of each service while the gang runs (heartbeat ages exist only
// then), then one checkpoint at the stage's end, evaluated by the evaluator.
constexpr int64_t kSteps = 80;

// Waits on polls and processes that a loaded machine slows down.
constexpr absl::Duration kPatience = absl::Seconds(60);

std::string Spec(const std::string& checkpoint_dir, const std::string& tokenizer) {
  return absl::StrCat(R"(name: dashboard
seed: 3
deterministic: true
)",
                      testing::kTinyModelYaml, "  tokenizer: {path: ", tokenizer, R"(}
stages:
  - name: short
    seq_len: 128
    batch_tokens: 8192
    total_tokens: )",
                      kSteps * 8192, R"(
    allow_repetition: true
    schedule: {peak_lr: 0.01, warmup_fraction: 0.1, shape: cosine, min_lr_ratio: 0.1}
    mixture:
      - {domain: books, proportion: 0.5, packing: long}
      - {domain: web, proportion: 0.5, packing: short}
resources: {data_parallel: 2}
checkpoint: {directory: )",
                      checkpoint_dir, R"(}
fault: {max_restarts: 0, heartbeat_timeout: 60s, rendezvous_timeout: 60s}
evaluation:
  on_checkpoint: true
  spec:
    tasks: [{name: json_kv, input_lengths: [1024], num_examples: 2, chat_template: off}]
    max_new_tokens: 16
)");
}

// Removes the test's directory once everything started in it is gone (declare it first).
struct TempDir {
  TempDir() : path(testing::MakeTempDir()) {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  const std::string path;
};

std::string Absolute(const std::string& path) { return std::filesystem::absolute(path).string(); }

// ---------------------------------------------------------------------------------------------
// The dashboard as Grafana reads it.

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  nlohmann::json json = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  return json;
}

// Every panel, those inside rows included, in order.
std::vector<nlohmann::json> AllPanels(const nlohmann::json& dashboard) {
  std::vector<nlohmann::json> panels;
  std::function<void(const nlohmann::json&)> add = [&](const nlohmann::json& list) {
    if (!list.is_array()) return;
    for (const nlohmann::json& panel : list) {
      panels.push_back(panel);
      if (panel.contains("panels")) add(panel["panels"]);
    }
  };
  add(dashboard.value("panels", nlohmann::json::array()));
  return panels;
}

struct Target {
  std::string panel;  // its title
  std::string ref_id;
  std::string expr;
  std::string Name() const { return absl::StrCat("\"", panel, "\" ", ref_id); }
};

std::vector<Target> Targets(const nlohmann::json& dashboard) {
  std::vector<Target> targets;
  for (const nlohmann::json& panel : AllPanels(dashboard)) {
    if (!panel.contains("targets")) continue;
    for (const nlohmann::json& target : panel["targets"]) {
      targets.push_back(
          {panel.value("title", ""), target.value("refId", ""), target.value("expr", "")});
    }
  }
  return targets;
}

// label_values(METRIC, LABEL), the one variable query form the test resolves.
struct LabelValuesQuery {
  std::string metric;
  std::string label;
};
std::optional<LabelValuesQuery> ParseLabelValues(const std::string& query) {
  static const std::regex kLabelValues(R"(^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$)");
  std::smatch match;
  if (!std::regex_match(query, match, kLabelValues)) return std::nullopt;
  return LabelValuesQuery{match[1].str(), match[2].str()};
}

// A variable's query: Grafana accepts the string, or an object holding it.
std::string VariableQuery(const nlohmann::json& variable) {
  const nlohmann::json& query = variable.value("query", nlohmann::json());
  if (query.is_string()) return query.get<std::string>();
  if (query.is_object()) return query.value("query", "");
  return "";
}

bool Overlap(const nlohmann::json& a, const nlohmann::json& b) {
  auto get = [](const nlohmann::json& g, const char* key) { return g.value(key, 0); };
  return get(a, "x") < get(b, "x") + get(b, "w") && get(b, "x") < get(a, "x") + get(a, "w") &&
         get(a, "y") < get(b, "y") + get(b, "h") && get(b, "y") < get(a, "y") + get(a, "h");
}

// The uid Grafana gives the provisioned Prometheus datasource.
absl::StatusOr<std::string> ProvisionedDatasourceUid() {
  YAML::Node file;
  try {
    file = YAML::LoadFile(kDatasources);
  } catch (const YAML::Exception& error) {
    return absl::InvalidArgumentError(absl::StrCat(kDatasources, ": ", error.what()));
  }
  if (!file["datasources"] || !file["datasources"].IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(kDatasources, ": no datasources list"));
  }
  std::vector<std::string> uids;
  for (const YAML::Node& datasource : file["datasources"]) {
    if (datasource["type"] && datasource["type"].as<std::string>() == "prometheus" &&
        datasource["uid"]) {
      uids.push_back(datasource["uid"].as<std::string>());
    }
  }
  if (uids.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(kDatasources, ": ", uids.size(),
                                                   " prometheus datasources with a uid, not one"));
  }
  return uids.front();
}

TEST(GrafanaDashboardTest, TheDashboardIsAGrafanaDashboardOverTheProvisionedPrometheus) {
  absl::StatusOr<std::string> uid = ProvisionedDatasourceUid();
  ASSERT_OK(uid);
  {
    const YAML::Node datasources = YAML::LoadFile(kDatasources);
    EXPECT_EQ(datasources["apiVersion"].as<int>(0), 1) << kDatasources;
    const YAML::Node providers = YAML::LoadFile(kDashboardProviders);
    EXPECT_EQ(providers["apiVersion"].as<int>(0), 1) << kDashboardProviders;
    ASSERT_TRUE(providers["providers"].IsSequence() && providers["providers"].size() == 1)
        << kDashboardProviders;
    const YAML::Node provider = providers["providers"][0];
    EXPECT_EQ(provider["type"].as<std::string>(""), "file") << kDashboardProviders;
    EXPECT_TRUE(absl::StartsWith(provider["options"]["path"].as<std::string>(""), "/"))
        << kDashboardProviders << ": the dashboards' directory must be absolute";
  }

  absl::StatusOr<nlohmann::json> dashboard = ReadJson(kDashboard);
  ASSERT_OK(dashboard);
  EXPECT_FALSE(dashboard->value("uid", "").empty()) << "a provisioned dashboard needs a uid";
  EXPECT_FALSE(dashboard->value("title", "").empty());
  EXPECT_TRUE(dashboard->contains("schemaVersion") && (*dashboard)["schemaVersion"].is_number());
  ASSERT_TRUE(dashboard->contains("panels") && (*dashboard)["panels"].is_array());
  EXPECT_FALSE(dashboard->contains("id") && !(*dashboard)["id"].is_null())
      << "an id is the database's own; a provisioned file leaves it out or null";

  const nlohmann::json expected_datasource = {{"type", "prometheus"}, {"uid", *uid}};
  const std::vector<nlohmann::json> panels = AllPanels(*dashboard);
  ASSERT_FALSE(panels.empty());
  std::set<int> ids;
  for (const nlohmann::json& panel : panels) {
    const std::string title = panel.value("title", "");
    SCOPED_TRACE(absl::StrCat("panel \"", title, "\""));
    EXPECT_FALSE(title.empty());
    ASSERT_TRUE(panel.contains("id") && panel["id"].is_number_integer()) << panel.dump();
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "id " << panel["id"] << " twice";
    const std::string type = panel.value("type", "");
    EXPECT_TRUE((std::set<std::string>{"row", "timeseries", "stat", "table", "gauge", "bargauge"})
                    .count(type))
        << type;

    ASSERT_TRUE(panel.contains("gridPos") && panel["gridPos"].is_object()) << panel.dump();
    const nlohmann::json& place = panel["gridPos"];
    for (const char* key : {"x", "y", "w", "h"}) {
      ASSERT_TRUE(place.contains(key) && place[key].is_number_integer()) << key;
    }
    EXPECT_GE(place["x"].get<int>(), 0);
    EXPECT_GE(place["y"].get<int>(), 0);
    EXPECT_GE(place["w"].get<int>(), 1);
    EXPECT_GE(place["h"].get<int>(), 1);
    EXPECT_LE(place["x"].get<int>() + place["w"].get<int>(), 24) << "past the 24-column grid";

    if (type == "row") {
      EXPECT_FALSE(panel.contains("targets")) << "a row queries nothing";
      continue;
    }
    EXPECT_EQ(panel.value("datasource", nlohmann::json()), expected_datasource);
    ASSERT_TRUE(panel.contains("targets") && panel["targets"].is_array() &&
                !panel["targets"].empty());
    std::set<std::string> ref_ids;
    for (const nlohmann::json& target : panel["targets"]) {
      const std::string ref_id = target.value("refId", "");
      EXPECT_FALSE(ref_id.empty()) << target.dump();
      EXPECT_TRUE(ref_ids.insert(ref_id).second) << "refId " << ref_id << " twice";
      EXPECT_FALSE(target.value("expr", "").empty()) << target.dump();
      if (target.contains("datasource")) {
        EXPECT_EQ(target["datasource"], expected_datasource) << target.dump();
      }
    }
  }
  // Panels of open rows sit side by side on one grid: none may cover another.
  const nlohmann::json& top = (*dashboard)["panels"];
  for (size_t i = 0; i < top.size(); ++i) {
    for (size_t j = i + 1; j < top.size(); ++j) {
      EXPECT_FALSE(Overlap(top[i]["gridPos"], top[j]["gridPos"]))
          << "\"" << top[i].value("title", "") << "\" and \"" << top[j].value("title", "")
          << "\" overlap";
    }
  }

  ASSERT_TRUE((*dashboard)["templating"]["list"].is_array());
  std::set<std::string> names;
  for (const nlohmann::json& variable : (*dashboard)["templating"]["list"]) {
    const std::string name = variable.value("name", "");
    SCOPED_TRACE(absl::StrCat("variable $", name));
    EXPECT_TRUE(names.insert(name).second) << "twice";
    EXPECT_EQ(variable.value("type", ""), "query");
    EXPECT_EQ(variable.value("datasource", nlohmann::json()), expected_datasource);
    EXPECT_TRUE(ParseLabelValues(VariableQuery(variable)).has_value()) << variable.dump();
    if (variable.value("includeAll", false)) {
      // Without one Grafana sends every value it listed, a regex that grows with the runs.
      EXPECT_FALSE(variable.value("allValue", "").empty()) << "includeAll without an allValue";
    }
  }
  EXPECT_TRUE(names.count("run")) << "the dashboard shows one run, chosen by $run";
  // Each panel the live test lets stay empty is on the dashboard.
  for (const auto& [title, why] : EmptyHere()) {
    EXPECT_TRUE(std::any_of(panels.begin(), panels.end(),
                            [&](const nlohmann::json& p) { return p.value("title", "") == title; }))
        << "no panel \"" << title << "\"";
  }
}

// ---------------------------------------------------------------------------------------------
// The dashboard's queries, sent to a real Prometheus.

testing::RunResult Ctl(const ServiceProcess& scheduler, std::vector<std::string> args,
                       absl::Duration timeout = kPatience) {
  args.insert(args.begin(),
              {testing::kProlongctlBinary, "run", "--scheduler=" + scheduler.address});
  absl::StatusOr<testing::RunResult> result = testing::Run(args, timeout);
  EXPECT_OK(result);
  return result.ok() ? *result : testing::RunResult();
}

// Replaces Grafana's variables in `expr`: the dashboard's own by `values`, $__rate_interval by
// kRateInterval, in each of the forms Grafana accepts ($name, ${name}, [[name]]).
std::string Substitute(std::string expr, const std::map<std::string, std::string>& values) {
  std::vector<std::pair<std::string, std::string>> by_length(values.begin(), values.end());
  by_length.emplace_back("__rate_interval", kRateInterval);
  // $plan before $p: a longer name is never cut by a shorter one.
  std::sort(by_length.begin(), by_length.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [name, value] : by_length) {
    expr = absl::StrReplaceAll(expr, {{absl::StrCat("${", name, "}"), value},
                                      {absl::StrCat("[[", name, "]]"), value},
                                      {absl::StrCat("$", name), value}});
  }
  return expr;
}

TEST(GrafanaDashboardTest, EveryPanelsQueryReturnsDataFromAPrometheusScrapingARealRun) {
  if (access(kPrometheusBinary, X_OK) != 0) {
    GTEST_SKIP() << kPrometheusBinary << " is not installed (Debian's prometheus package): "
                 << "this test needs a real Prometheus to scrape the services";
  }
  absl::StatusOr<nlohmann::json> dashboard = ReadJson(kDashboard);
  ASSERT_OK(dashboard);
  const std::vector<Target> targets = Targets(*dashboard);
  ASSERT_FALSE(targets.empty());

  const TempDir dir;
  ASSERT_OK(testing::WriteLearnableCorpus(dir.path + "/store"));
  const std::string tokenizer = testing::WriteByteTokenizer(dir.path);
  absl::StatusOr<ServiceProcess> datamixer =
      testing::StartService({testing::kDatamixerBinary, "--store=" + dir.path + "/store",
                             "--address=127.0.0.1:0", "--metrics-address=127.0.0.1:0"},
                            kPatience);
  ASSERT_OK(datamixer);
  absl::StatusOr<ServiceProcess> evaluator = testing::StartService(
      {testing::kEvaluatorBinary, "--store=" + dir.path + "/results", "--device=cpu",
       "--address=127.0.0.1:0", "--metrics-address=127.0.0.1:0"},
      kPatience);
  ASSERT_OK(evaluator);
  absl::StatusOr<ServiceProcess> started = testing::StartService(
      {testing::kSchedulerBinary, "--state-dir=" + dir.path + "/scheduler", "--address=127.0.0.1:0",
       "--metrics-address=127.0.0.1:0", "--trainer-binary=" + Absolute(testing::kTrainerBinary),
       "--datamixer=" + datamixer->address, "--evaluator=" + evaluator->address,
       "--heartbeat-interval-ms=500"},
      kPatience);
  ASSERT_OK(started);
  const ServiceProcess& scheduler = *started;

  const std::map<std::string, std::string> jobs = {
      {"prolong-scheduler", scheduler.metrics_address},
      {"prolong-datamixer", datamixer->metrics_address},
      {"prolong-evaluator", evaluator->metrics_address}};
  for (const auto& [job, target] : jobs) ASSERT_FALSE(target.empty()) << job << ": no /metrics";
  std::ofstream(dir.path + "/prometheus.yml") << testing::PrometheusConfig(jobs);
  absl::StatusOr<Prometheus> prometheus =
      testing::StartPrometheus(dir.path + "/prometheus.yml", dir.path, kPatience);
  ASSERT_OK(prometheus);
  ASSERT_TRUE(Eventually(kPatience,
                         [&] {
                           absl::StatusOr<nlohmann::json> up = prometheus->Query("up == 1");
                           return up.ok() && up->size() == jobs.size();
                         }))
      << "Prometheus never scraped all of " << testing::PrometheusConfig(jobs) << ": "
      << prometheus->process->Stderr();

  std::ofstream(dir.path + "/run.yaml") << Spec(dir.path + "/checkpoints", tokenizer);
  const testing::RunResult submitted = Ctl(scheduler, {"submit", dir.path + "/run.yaml"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.stderr_text;
  const std::string run_id(absl::StripAsciiWhitespace(submitted.stdout_text));
  const absl::Time submit_time = absl::Now();

  // The template variables, resolved by their own queries as Grafana's dropdowns are: $run must
  // offer this run and takes it; another takes the first value it offers (a value selected, not
  // "All", whose allValue would match anything and so check nothing).
  std::map<std::string, std::string> values;
  for (const nlohmann::json& variable : (*dashboard)["templating"]["list"]) {
    const std::string name = variable.value("name", "");
    const std::optional<LabelValuesQuery> query = ParseLabelValues(VariableQuery(variable));
    ASSERT_TRUE(query.has_value()) << "$" << name << ": " << variable.dump();
    std::vector<std::string> offered;
    ASSERT_TRUE(Eventually(kPatience,
                           [&] {
                             offered = prometheus->LabelValues(query->metric, query->label)
                                           .value_or(std::vector<std::string>());
                             return name == "run"
                                        ? std::count(offered.begin(), offered.end(), run_id) > 0
                                        : !offered.empty();
                           }))
        << "$" << name << " offers [" << absl::StrJoin(offered, ", ") << "]";
    values[name] = name == "run" ? run_id : offered.front();
  }

  // Every target, polled from the submission until each has returned a series: training panels
  // while the gang trains, evaluation panels once the stage's last checkpoint is scored. The run
  // succeeds only once that checkpoint is scored, so a few scrapes after its end nothing more
  // can come; a query Prometheus rejects (HTTP 4xx: bad PromQL) never will.
  struct Polled {
    std::string expr;
    bool empty_here = false;
    bool rejected = false;
    absl::Duration first_data = absl::InfiniteDuration();
    int answers = 0;
    std::string last;  // the last answer or error
  };
  std::vector<Polled> polled;
  for (const Target& target : targets) {
    Polled p;
    p.expr = Substitute(target.expr, values);
    p.empty_here = EmptyHere().count(target.panel) > 0;
    EXPECT_FALSE(absl::StrContains(p.expr, "$") || absl::StrContains(p.expr, "[["))
        << target.Name() << ": a variable the test does not know in " << p.expr;
    polled.push_back(std::move(p));
  }
  auto pending = [&] {
    return std::any_of(polled.begin(), polled.end(), [](const Polled& p) {
      return !p.empty_here && !p.rejected && p.first_data == absl::InfiniteDuration();
    });
  };
  static const std::regex kRejected(R"(: HTTP 4\d\d$)");
  const std::string ended_query =
      R"(sum(prolong_scheduler_runs{state=~"SUCCEEDED|FAILED|CANCELLED"}) > 0)";
  const absl::Time deadline = absl::Now() + 3 * kPatience;
  absl::Time ended = absl::InfiniteFuture();
  while (pending() && absl::Now() < deadline && absl::Now() < ended + absl::Seconds(5)) {
    for (Polled& p : polled) {
      if (p.rejected || (!p.empty_here && p.first_data != absl::InfiniteDuration())) continue;
      absl::StatusOr<nlohmann::json> result = prometheus->Query(p.expr);
      if (!result.ok()) {
        p.last = result.status().ToString();
        p.rejected = std::regex_search(p.last, kRejected);
        continue;
      }
      ++p.answers;
      p.last = result->dump();
      if (!result->empty() && p.first_data == absl::InfiniteDuration()) {
        p.first_data = absl::Now() - submit_time;
      }
    }
    if (ended == absl::InfiniteFuture()) {
      absl::StatusOr<nlohmann::json> result = prometheus->Query(ended_query);
      if (result.ok() && !result->empty()) ended = absl::Now();
    }
    absl::SleepFor(absl::Milliseconds(500));
  }

  for (size_t i = 0; i < targets.size(); ++i) {
    const Polled& p = polled[i];
    if (p.empty_here) {
      EXPECT_GT(p.answers, 0) << targets[i].Name() << ": Prometheus never answered " << p.expr
                              << " with success: " << p.last;
      EXPECT_EQ(p.first_data, absl::InfiniteDuration())
          << targets[i].Name() << " returned data, so it need not be excused ("
          << EmptyHere().at(targets[i].panel) << "): " << p.last;
    } else {
      EXPECT_FALSE(p.rejected) << targets[i].Name() << ": Prometheus rejects " << p.expr << ": "
                               << p.last;
      EXPECT_TRUE(p.rejected || p.first_data != absl::InfiniteDuration())
          << targets[i].Name() << ": " << p.expr << " returned no series; last answer: " << p.last;
    }
    std::cout << targets[i].Name() << ": "
              << (p.first_data == absl::InfiniteDuration()
                      ? std::string("no data")
                      : absl::StrCat("data ", absl::FormatDuration(p.first_data),
                                     " after the submission"))
              << "\n    " << p.expr << "\n";
  }

  // The run trained to its end and its checkpoint was scored, as the panels said.
  const testing::RunResult watched = Ctl(scheduler, {"watch", run_id}, absl::Seconds(180));
  EXPECT_EQ(watched.exit_code, 0) << watched.stdout_text << watched.stderr_text
                                  << scheduler.process->Stderr();
  EXPECT_TRUE(absl::StrContains(watched.stdout_text, "SUCCEEDED")) << watched.stdout_text;
  EXPECT_TRUE(std::regex_search(
      watched.stdout_text,
      std::regex(absl::StrCat(R"(evaluation short step )", kSteps, R"(: recall \d+\.\d)"))))
      << watched.stdout_text;
}

}  // namespace
}  // namespace prolong
