#include "tests/prometheus_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/http_get.h"

namespace prolong::testing {
namespace {

// A loopback port nothing listens on at the moment of asking.
absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  if (!bound) return absl::InternalError("bind 127.0.0.1:0");
  return ntohs(address.sin_port);
}

std::string QueryEscape(const std::string& text) {
  std::string escaped;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      escaped += static_cast<char>(c);
    } else {
      escaped += absl::StrFormat("%%%02X", c);
    }
  }
  return escaped;
}

}  // namespace

bool Eventually(absl::Duration timeout, const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

std::string PrometheusConfig(const std::map<std::string, std::string>& static_targets,
                             const std::map<std::string, std::string>& file_sd_targets) {
  std::string config = absl::StrFormat(R"(global:
  scrape_interval: %ds
  scrape_timeout: %ds
  evaluation_interval: %ds
scrape_configs:
)",
                                       kScrapeSeconds, kScrapeSeconds, kScrapeSeconds);
  for (const auto& [job, target] : static_targets) {
    absl::StrAppend(&config, "  - job_name: ", job, "\n    static_configs:\n      - targets: [\"",
                    target, "\"]\n");
  }
  for (const auto& [job, file] : file_sd_targets) {
    absl::StrAppend(&config, "  - job_name: ", job, "\n    file_sd_configs:\n      - files: [\"",
                    file, "\"]\n        refresh_interval: ", kScrapeSeconds, "s\n");
  }
  return config;
}

absl::StatusOr<nlohmann::json> Prometheus::Api(const std::string& path,
                                               const std::string& what) const {
  absl::StatusOr<std::string> body = HttpGet(address, path, absl::Seconds(10));
  if (!body.ok()) return body.status();
  nlohmann::json reply = nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || reply.value("status", "") != "success") {
    return absl::InternalError(absl::StrCat(what, ": ", *body));
  }
  nlohmann::json& data = reply["data"];
  if (data.is_object() && data.contains("result")) return data["result"];
  return data;
}

absl::StatusOr<nlohmann::json> Prometheus::Query(const std::string& promql) const {
  return Api("/api/v1/query?query=" + QueryEscape(promql), promql);
}

absl::StatusOr<std::vector<Prometheus::Sample>> Prometheus::Samples(
    const std::string& promql) const {
  absl::StatusOr<nlohmann::json> result = Query(promql);
  if (!result.ok()) return result.status();
  std::vector<Sample> samples;
  for (const nlohmann::json& series : *result) {
    Sample sample;
    sample.labels = series["metric"];
    const std::string text = series["value"][1].get<std::string>();
    if (!absl::SimpleAtod(text, &sample.value)) {
      return absl::InternalError(absl::StrCat(promql, ": value ", text));
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

absl::StatusOr<double> Prometheus::Value(const std::string& promql) const {
  absl::StatusOr<std::vector<Sample>> samples = Samples(promql);
  if (!samples.ok()) return samples.status();
  if (samples->empty()) return absl::NotFoundError(absl::StrCat(promql, ": no series"));
  if (samples->size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(promql, ": ", samples->size(), " series, not one"));
  }
  return samples->front().value;
}

std::string Prometheus::Type(const std::string& metric) const {
  absl::StatusOr<std::string> body = HttpGet(address, "/api/v1/metadata?metric=" + metric);
  if (!body.ok()) return body.status().ToString();
  const nlohmann::json reply = nlohmann::json::parse(*body, nullptr, false);
  if (reply.is_discarded() || !reply["data"].contains(metric)) return "(unknown)";
  return reply["data"][metric][0].value("type", "(none)");
}

absl::StatusOr<std::vector<std::string>> Prometheus::LabelValues(const std::string& metric,
                                                                 const std::string& label) const {
  const std::string path =
      absl::StrCat("/api/v1/label/", label, "/values?match%5B%5D=", QueryEscape(metric));
  absl::StatusOr<nlohmann::json> values = Api(path, path);
  if (!values.ok()) return values.status();
  std::vector<std::string> out;
  for (const nlohmann::json& value : *values) out.push_back(value.get<std::string>());
  return out;
}

absl::StatusOr<Prometheus> StartPrometheus(const std::string& config, const std::string& dir,
                                           absl::Duration timeout) {
  absl::Status last = absl::UnknownError("not started");
  // Another process may take the port between asking and binding: then once more.
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<int> port = FreePort();
    if (!port.ok()) return port.status();
    Prometheus prometheus;
    prometheus.address = absl::StrCat("127.0.0.1:", *port);
    absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(
        {kPrometheusBinary, "--config.file=" + config, "--web.listen-address=" + prometheus.address,
         absl::StrCat("--storage.tsdb.path=", dir, "/tsdb-", attempt), "--log.level=warn"});
    if (!process.ok()) return process.status();
    prometheus.process = *std::move(process);
    bool exited = false;
    const bool ready = Eventually(timeout, [&] {
      exited = prometheus.process->Wait(absl::ZeroDuration()).ok();
      return exited || HttpGet(prometheus.address, "/-/ready").ok();
    });
    if (ready && !exited) return prometheus;
    last = absl::UnavailableError(absl::StrCat("prometheus on ", prometheus.address,
                                               exited ? " exited" : " never became ready",
                                               "; stderr: ", prometheus.process->Stderr()));
  }
  return last;
}

}  // namespace prolong::testing
