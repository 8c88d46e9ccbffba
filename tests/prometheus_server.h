// A real Prometheus (Debian's 2.42) for tests that check what an operator's Prometheus reads from
// the services: started as a child process on a free loopback port with a scrape configuration of
// deploy/prometheus/prometheus.yml's jobs at the test's addresses, and queried through its HTTP
// API. A handle's queries are const and may be made from any thread.
#ifndef PROLONG_TESTS_PROMETHEUS_SERVER_H_
#define PROLONG_TESTS_PROMETHEUS_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/subprocess.h"

namespace prolong::testing {

// Where Debian's prometheus package installs the server; tests skip where it is absent.
inline constexpr char kPrometheusBinary[] = "/usr/bin/prometheus";

// How often the configured Prometheus scrapes, evaluates and rereads its target files.
inline constexpr int kScrapeSeconds = 1;

// Polls `done` until it holds or `timeout` passes; says whether it held.
bool Eventually(absl::Duration timeout, const std::function<bool()>& done);

// A configuration of deploy/prometheus/prometheus.yml's jobs at a test's addresses, scraping every
// kScrapeSeconds: each job of `static_targets` (job name to address) at its one address, and each
// of `file_sd_targets` (job name to a JSON file of targets, which a test may write only once the
// targets are known, renamed into place) by file-based discovery.
std::string PrometheusConfig(const std::map<std::string, std::string>& static_targets,
                             const std::map<std::string, std::string>& file_sd_targets = {});

struct Prometheus {
  std::unique_ptr<Subprocess> process;
  std::string address;  // HOST:PORT of its HTTP API

  // The series an instant query returns now, as Prometheus' JSON result; an error unless it
  // answers with status "success" (a query it rejects fails with HttpGet's "HTTP 4xx").
  absl::StatusOr<nlohmann::json> Query(const std::string& promql) const;

  // The same series, each one's labels and value.
  struct Sample {
    nlohmann::json labels;
    double value = 0;
  };
  absl::StatusOr<std::vector<Sample>> Samples(const std::string& promql) const;

  // The value of the query's one series; NOT_FOUND while it has none.
  absl::StatusOr<double> Value(const std::string& promql) const;

  // The metric's type as Prometheus learned it from a scrape ("gauge", "counter", ...).
  std::string Type(const std::string& metric) const;

  // The values of `label` on the series of `metric` (a selector), as Grafana's
  // label_values(METRIC, LABEL) lists them.
  absl::StatusOr<std::vector<std::string>> LabelValues(const std::string& metric,
                                                       const std::string& label) const;

 private:
  // GETs `path` and returns its "data" (the "result" inside it where there is one); errors name
  // `what`.
  absl::StatusOr<nlohmann::json> Api(const std::string& path, const std::string& what) const;
};

// Starts Prometheus with the configuration file `config`, its storage under `dir`, on a free
// loopback port, and waits up to `timeout` until it is ready (GET /-/ready).
absl::StatusOr<Prometheus> StartPrometheus(const std::string& config, const std::string& dir,
                                           absl::Duration timeout);

}  // namespace prolong::testing

#endif  // PROLONG_TESTS_PROMETHEUS_SERVER_H_
