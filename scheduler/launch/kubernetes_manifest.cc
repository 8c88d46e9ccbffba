#include "scheduler/launch/kubernetes_manifest.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "common/log.h"
#include "yaml-cpp/yaml.h"

namespace prolong::scheduler {
namespace {

constexpr absl::string_view kNamePrefix = "prolong-";
// Pod hostnames are "<job>-<index>" and must be DNS labels (63 characters); 52 leaves room for
// an index of ten digits.
constexpr size_t kMaxJobNameLength = 52;
constexpr size_t kMaxLabelValueLength = 63;
constexpr char kContainerName[] = "worker";
constexpr char kShmVolume[] = "dshm";

// Stable across processes and builds (unlike absl::Hash), so a name can be recomputed later.
std::string ShortHash(absl::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return absl::StrFormat("%08x", static_cast<uint32_t>(hash ^ (hash >> 32)));
}

// Keeps what `keep` accepts, turns each run of other characters into one '-', and trims
// characters that `keep_at_ends` rejects from both ends.
template <typename Keep, typename KeepAtEnds>
std::string Sanitize(absl::string_view text, Keep keep, KeepAtEnds keep_at_ends) {
  std::string out;
  for (char c : text) {
    if (keep(c)) {
      out.push_back(c);
    } else if (out.empty() || out.back() != '-') {
      out.push_back('-');
    }
  }
  while (!out.empty() && !keep_at_ends(out.back())) out.pop_back();
  size_t first = 0;
  while (first < out.size() && !keep_at_ends(out[first])) ++first;
  return out.substr(first);
}

// `text` cut to at most `length` characters, then trimmed at the end as Sanitize does.
template <typename KeepAtEnds>
std::string Truncate(std::string text, size_t length, KeepAtEnds keep_at_ends) {
  if (text.size() > length) text.resize(length);
  while (!text.empty() && !keep_at_ends(text.back())) text.pop_back();
  return text;
}

bool IsLowerAlnum(char c) { return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z'); }

bool IsNameChar(char c) { return IsLowerAlnum(c) || c == '-'; }

bool IsLabelChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'; }

// A label value: at most 63 of [A-Za-z0-9-_.], beginning and ending alphanumeric. `value` when
// it is one already; otherwise a sanitized, shortened form with a hash of the original.
std::string LabelValue(absl::string_view value) {
  std::string sanitized = Sanitize(value, IsLabelChar, absl::ascii_isalnum);
  if (sanitized == value && sanitized.size() <= kMaxLabelValueLength) return sanitized;
  const std::string hash = ShortHash(value);
  sanitized =
      Truncate(std::move(sanitized), kMaxLabelValueLength - hash.size() - 1, absl::ascii_isalnum);
  return sanitized.empty() ? hash : absl::StrCat(sanitized, "-", hash);
}

std::string Namespace(const v1::KubernetesLauncher& k8s) {
  return k8s.namespace_().empty() ? "default" : k8s.namespace_();
}

// Kubernetes expands $(VAR) in a container's command and turns "$$" into "$"; doubling every
// '$' passes the argument through unchanged.
std::string EscapeDollars(absl::string_view arg) { return absl::StrReplaceAll(arg, {{"$", "$$"}}); }

// Map keys and string values are always double-quoted: a value such as "true", "0755", "a: b"
// or "#x" would otherwise change type or structure.
void Quoted(YAML::Emitter& out, absl::string_view text) {
  out << YAML::DoubleQuoted << std::string(text);
}

void StringField(YAML::Emitter& out, absl::string_view key, absl::string_view value) {
  out << YAML::Key << std::string(key) << YAML::Value;
  Quoted(out, value);
}

void StringMap(YAML::Emitter& out, absl::string_view key,
               const std::vector<std::pair<std::string, std::string>>& entries) {
  out << YAML::Key << std::string(key) << YAML::Value << YAML::BeginMap;
  for (const auto& [name, value] : entries) {
    out << YAML::Key;
    Quoted(out, name);
    out << YAML::Value;
    Quoted(out, value);
  }
  out << YAML::EndMap;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Selects the gang's pods: run and attempt name one gang.
Labels SelectorLabels(const GangSpec& gang) {
  return {
      {"app.kubernetes.io/name", "prolong-worker"},
      {"prolong.dev/run", LabelValue(gang.run_id)},
      {"prolong.dev/attempt", absl::StrCat(gang.attempt)},
  };
}

Labels GangLabels(const GangSpec& gang) {
  Labels labels = SelectorLabels(gang);
  labels.emplace_back("prolong.dev/stage", LabelValue(gang.stage));
  return labels;
}

// Label values may have been shortened; the annotations keep the originals.
Labels GangAnnotations(const GangSpec& gang) {
  return {
      {"prolong.dev/run-id", gang.run_id},
      {"prolong.dev/stage", gang.stage},
      {"prolong.dev/stage-index", absl::StrCat(gang.stage_index)},
  };
}

void Metadata(YAML::Emitter& out, const std::string& name, const std::string& namespace_name,
              const GangSpec& gang) {
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  StringField(out, "name", name);
  StringField(out, "namespace", namespace_name);
  StringMap(out, "labels", GangLabels(gang));
  StringMap(out, "annotations", GangAnnotations(gang));
  out << YAML::EndMap;
}

void RenderService(YAML::Emitter& out, const GangSpec& gang, const std::string& name,
                   const std::string& namespace_name) {
  out << YAML::BeginDoc << YAML::BeginMap;
  StringField(out, "apiVersion", "v1");
  StringField(out, "kind", "Service");
  Metadata(out, name, namespace_name, gang);
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  // Headless: DNS answers with the pods' own addresses, one name per pod.
  StringField(out, "clusterIP", "None");
  StringMap(out, "selector", SelectorLabels(gang));
  // The ranks connect to rank 0's store while they start, before any pod could be ready.
  out << YAML::Key << "publishNotReadyAddresses" << YAML::Value << true;
  out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  StringField(out, "name", "rendezvous");
  StringField(out, "protocol", "TCP");
  out << YAML::Key << "port" << YAML::Value << kKubernetesRendezvousPort;
  out << YAML::Key << "targetPort" << YAML::Value << kKubernetesRendezvousPort;
  out << YAML::EndMap << YAML::EndSeq;
  out << YAML::EndMap;  // spec
  out << YAML::EndMap;
}

void RenderEnv(YAML::Emitter& out) {
  // NCCL_DEBUG=WARN: NCCL's warnings and the reason of a failed collective reach the pod's log,
  // without INFO's per-communicator lines.
  // NCCL_SOCKET_IFNAME=eth0: bootstrap and socket traffic use the pod network, where the other
  // ranks' addresses live; NCCL's own choice may pick a secondary (e.g. Multus) interface that
  // the other pods cannot reach.
  // NCCL_IB_DISABLE is left unset: NCCL uses InfiniBand/RoCE where the node exposes it and
  // falls back to sockets where it does not; disabling it would slow multi-node gangs down.
  const std::vector<std::pair<std::string, std::string>> values = {
      {"NCCL_DEBUG", "WARN"},
      {"NCCL_SOCKET_IFNAME", "eth0"},
  };
  out << YAML::Key << "env" << YAML::Value << YAML::BeginSeq;
  for (const auto& [name, value] : values) {
    out << YAML::BeginMap;
    StringField(out, "name", name);
    StringField(out, "value", value);
    out << YAML::EndMap;
  }
  out << YAML::BeginMap;
  StringField(out, "name", "POD_NAME");
  out << YAML::Key << "valueFrom" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "fieldRef" << YAML::Value << YAML::BeginMap;
  StringField(out, "fieldPath", "metadata.name");
  out << YAML::EndMap << YAML::EndMap;
  out << YAML::EndMap;
  out << YAML::EndSeq;
}

void RenderResources(YAML::Emitter& out, const v1::KubernetesLauncher& k8s) {
  Labels requests;
  if (!k8s.cpu().empty()) requests.emplace_back("cpu", k8s.cpu());
  if (!k8s.memory().empty()) requests.emplace_back("memory", k8s.memory());
  Labels limits = requests;
  // Extended resources are only given as limits; the request defaults to the limit.
  if (k8s.gpus_per_pod() > 0)
    limits.emplace_back("nvidia.com/gpu", absl::StrCat(k8s.gpus_per_pod()));
  if (limits.empty()) return;
  out << YAML::Key << "resources" << YAML::Value << YAML::BeginMap;
  if (!requests.empty()) StringMap(out, "requests", requests);
  StringMap(out, "limits", limits);
  out << YAML::EndMap;
}

void RenderContainer(YAML::Emitter& out, const GangSpec& gang, const v1::KubernetesLauncher& k8s,
                     const std::string& rendezvous_host) {
  std::vector<std::string> command = WorkerArgs(gang);
  command.push_back(absl::StrCat("--rendezvous-host=", rendezvous_host));
  command.push_back(absl::StrCat("--rendezvous-port=", kKubernetesRendezvousPort));

  out << YAML::BeginMap;
  StringField(out, "name", kContainerName);
  StringField(out, "image", k8s.image());
  out << YAML::Key << "command" << YAML::Value << YAML::BeginSeq;
  for (const std::string& arg : command) Quoted(out, EscapeDollars(arg));
  out << YAML::EndSeq;
  RenderEnv(out);
  out << YAML::Key << "ports" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  StringField(out, "name", "rendezvous");
  StringField(out, "protocol", "TCP");
  out << YAML::Key << "containerPort" << YAML::Value << kKubernetesRendezvousPort;
  out << YAML::EndMap << YAML::EndSeq;
  RenderResources(out, k8s);
  out << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  StringField(out, "name", kShmVolume);
  StringField(out, "mountPath", "/dev/shm");
  out << YAML::EndMap << YAML::EndSeq;
  // A rank that dies before writing a termination message still tells why: the pod status
  // carries the end of its log.
  StringField(out, "terminationMessagePolicy", "FallbackToLogsOnError");
  out << YAML::EndMap;
}

void RenderJob(YAML::Emitter& out, const GangSpec& gang, const v1::KubernetesLauncher& k8s,
               const std::string& name, const std::string& namespace_name) {
  out << YAML::BeginDoc << YAML::BeginMap;
  StringField(out, "apiVersion", "batch/v1");
  StringField(out, "kind", "Job");
  Metadata(out, name, namespace_name, gang);
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  StringField(out, "completionMode", "Indexed");
  out << YAML::Key << "completions" << YAML::Value << gang.world_size();
  out << YAML::Key << "parallelism" << YAML::Value << gang.world_size();
  // A gang cannot take back one restarted rank: the scheduler relaunches the whole gang.
  out << YAML::Key << "backoffLimit" << YAML::Value << 0;

  out << YAML::Key << "template" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  StringMap(out, "labels", GangLabels(gang));
  StringMap(out, "annotations", GangAnnotations(gang));
  out << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  StringField(out, "restartPolicy", "Never");
  // With the Service of the same name, gives rank r the DNS name <job>-r.<service>.<ns>.svc.
  StringField(out, "subdomain", name);
  if (!k8s.service_account().empty()) {
    StringField(out, "serviceAccountName", k8s.service_account());
  }
  if (!k8s.node_selector().empty()) {
    // Sorted: the same spec always renders the same bytes.
    const std::map<std::string, std::string> sorted(k8s.node_selector().begin(),
                                                    k8s.node_selector().end());
    StringMap(out, "nodeSelector", Labels(sorted.begin(), sorted.end()));
  }
  out << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq;
  RenderContainer(out, gang, k8s, absl::StrCat(name, "-0.", name, ".", namespace_name, ".svc"));
  out << YAML::EndSeq;
  // The container runtime's /dev/shm is 64 MiB; NCCL's shared-memory transport and the data
  // loader's buffers need more. Memory-backed, so it counts against the pod's memory limit.
  out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  StringField(out, "name", kShmVolume);
  out << YAML::Key << "emptyDir" << YAML::Value << YAML::BeginMap;
  StringField(out, "medium", "Memory");
  out << YAML::EndMap;
  out << YAML::EndMap << YAML::EndSeq;
  out << YAML::EndMap;  // template.spec
  out << YAML::EndMap;  // template
  out << YAML::EndMap;  // spec
  out << YAML::EndMap;
}

}  // namespace

std::string KubernetesJobName(const GangSpec& gang) {
  const std::string suffix = absl::StrCat("-", gang.attempt);
  const size_t budget = kMaxJobNameLength - kNamePrefix.size() - suffix.size();
  std::string run = Sanitize(absl::AsciiStrToLower(gang.run_id), IsNameChar, IsLowerAlnum);
  if (run == gang.run_id && run.size() <= budget) return absl::StrCat(kNamePrefix, run, suffix);
  const std::string hash = ShortHash(gang.run_id);
  run = Truncate(std::move(run), budget - hash.size() - 1, IsLowerAlnum);
  return run.empty() ? absl::StrCat(kNamePrefix, hash, suffix)
                     : absl::StrCat(kNamePrefix, run, "-", hash, suffix);
}

std::string RenderKubernetesGang(const GangSpec& gang, const v1::KubernetesLauncher& k8s) {
  const std::string name = KubernetesJobName(gang);
  const std::string namespace_name = Namespace(k8s);
  YAML::Emitter out;
  RenderService(out, gang, name, namespace_name);
  RenderJob(out, gang, k8s, name, namespace_name);
  PROLONG_CHECK(out.good()) << out.GetLastError();
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace prolong::scheduler
