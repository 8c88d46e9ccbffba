// Rendered gangs must pass Kubernetes' own schemas (npm's kubernetes-models, run by
// validate_k8s.js with the API server's naming and label rules) and say what the launcher
// means: one pod per rank, the worker command with the rendezvous on rank 0's DNS name, GPUs,
// labels. Manifests broken on purpose must fail the same check.

#include "scheduler/launch/kubernetes_manifest.h"

#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/launch/gang.h"
#include "tests/subprocess.h"
#include "yaml-cpp/yaml.h"

namespace prolong::scheduler {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kValidator[] = "scheduler/launch/validate_k8s.js";

GangSpec OneRankGang() {
  GangSpec gang;
  gang.run_id = "r-20261127-0001";
  gang.attempt = 1;
  gang.stage = "short";
  gang.stage_index = 0;
  gang.scheduler_address = "prolong-scheduler.prolong.svc:50051";
  gang.trainer_binary = "/opt/prolong/bin/trainer";
  gang.job_args = {"--config=/etc/prolong/run.textproto"};
  gang.log_dir = "/var/log/prolong";
  return gang;
}

v1::KubernetesLauncher ImageOnly() {
  v1::KubernetesLauncher k8s;
  k8s.set_image("ghcr.io/prolong/trainer:1.0");
  return k8s;
}

// Runs the validator on `yaml`; its exit code and what it printed.
testing::RunResult Validate(const std::string& yaml) {
  static int files = 0;
  const std::string path = absl::StrCat(testing::MakeTempDir(), "/gang-", files++, ".yaml");
  std::ofstream(path) << yaml;
  absl::StatusOr<testing::RunResult> result =
      testing::Run({"/usr/bin/env", "node", kValidator, path}, absl::Seconds(60));
  EXPECT_OK(result.status());
  return result.ok() ? *result : testing::RunResult{};
}

void ExpectValid(const std::string& yaml) {
  const testing::RunResult result = Validate(yaml);
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text << "\n" << yaml;
  EXPECT_THAT(result.stdout_text, HasSubstr("2 valid object(s)")) << result.stderr_text;
}

struct Objects {
  YAML::Node service;
  YAML::Node job;
};

Objects Parse(const std::string& yaml) {
  std::vector<YAML::Node> documents = YAML::LoadAll(yaml);
  EXPECT_EQ(documents.size(), 2u) << yaml;
  if (documents.size() != 2) return {};
  EXPECT_EQ(documents[0]["kind"].as<std::string>(), "Service");
  EXPECT_EQ(documents[1]["kind"].as<std::string>(), "Job");
  return {documents[0], documents[1]};
}

std::vector<std::string> Strings(const YAML::Node& sequence) {
  return sequence.as<std::vector<std::string>>();
}

std::map<std::string, std::string> StringMap(const YAML::Node& map) {
  return map.as<std::map<std::string, std::string>>();
}

// A scalar that YAML reads as a string whatever it looks like: quoted in the text.
bool IsQuoted(const YAML::Node& scalar) { return scalar.IsScalar() && scalar.Tag() == "!"; }

// `text` with its one occurrence of `from` replaced, or a failure if it has none or several.
std::string ReplaceOnce(const std::string& text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from << " not in\n" << text;
  if (at == std::string::npos) return text;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " twice in\n" << text;
  return text.substr(0, at) + to + text.substr(at + from.size());
}

bool IsDnsLabel(const std::string& name) {
  static const std::regex kLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return name.size() <= 63 && std::regex_match(name, kLabel);
}

TEST(KubernetesManifestTest, OneRankIsAValidServiceAndIndexedJob) {
  const GangSpec gang = OneRankGang();
  const std::string yaml = RenderKubernetesGang(gang, ImageOnly());
  ExpectValid(yaml);

  const std::string name = KubernetesJobName(gang);
  EXPECT_EQ(name, "prolong-r-20261127-0001-1");
  const Objects objects = Parse(yaml);
  const YAML::Node& service = objects.service;
  EXPECT_EQ(service["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(service["metadata"]["name"].as<std::string>(), name);
  EXPECT_EQ(service["metadata"]["namespace"].as<std::string>(), "default");
  EXPECT_EQ(service["spec"]["clusterIP"].as<std::string>(), "None");
  EXPECT_TRUE(service["spec"]["publishNotReadyAddresses"].as<bool>());
  ASSERT_EQ(service["spec"]["ports"].size(), 1u);
  EXPECT_EQ(service["spec"]["ports"][0]["name"].as<std::string>(), "rendezvous");
  EXPECT_EQ(service["spec"]["ports"][0]["port"].as<int>(), 29500);

  const YAML::Node& job = objects.job;
  EXPECT_EQ(job["apiVersion"].as<std::string>(), "batch/v1");
  EXPECT_EQ(job["metadata"]["name"].as<std::string>(), name);
  const YAML::Node spec = job["spec"];
  EXPECT_EQ(spec["completionMode"].as<std::string>(), "Indexed");
  EXPECT_EQ(spec["completions"].as<int>(), 1);
  EXPECT_EQ(spec["parallelism"].as<int>(), 1);
  EXPECT_EQ(spec["backoffLimit"].as<int>(), 0);
  const YAML::Node pod = spec["template"]["spec"];
  EXPECT_EQ(pod["restartPolicy"].as<std::string>(), "Never");
  EXPECT_EQ(pod["subdomain"].as<std::string>(), name);
  EXPECT_FALSE(pod["serviceAccountName"]);
  EXPECT_FALSE(pod["nodeSelector"]);
  ASSERT_EQ(pod["containers"].size(), 1u);
  const YAML::Node container = pod["containers"][0];
  EXPECT_EQ(container["image"].as<std::string>(), "ghcr.io/prolong/trainer:1.0");
  EXPECT_FALSE(container["resources"]);

  // The Service selects exactly the Job's pods.
  const auto pod_labels = StringMap(spec["template"]["metadata"]["labels"]);
  for (const auto& [key, value] : StringMap(service["spec"]["selector"])) {
    const auto label = pod_labels.find(key);
    ASSERT_NE(label, pod_labels.end()) << key;
    EXPECT_EQ(label->second, value) << key;
  }
  EXPECT_EQ(pod_labels.at("prolong.dev/attempt"), "1");
  EXPECT_TRUE(IsQuoted(spec["template"]["metadata"]["labels"]["prolong.dev/attempt"]));

  // /dev/shm is a memory-backed volume, not the runtime's 64 MiB.
  ASSERT_EQ(container["volumeMounts"].size(), 1u);
  EXPECT_EQ(container["volumeMounts"][0]["mountPath"].as<std::string>(), "/dev/shm");
  const std::string volume = container["volumeMounts"][0]["name"].as<std::string>();
  ASSERT_EQ(pod["volumes"].size(), 1u);
  EXPECT_EQ(pod["volumes"][0]["name"].as<std::string>(), volume);
  EXPECT_EQ(pod["volumes"][0]["emptyDir"]["medium"].as<std::string>(), "Memory");
}

TEST(KubernetesManifestTest, EightRanksWithGpusNodeSelectorAndServiceAccount) {
  GangSpec gang = OneRankGang();
  gang.dp_size = 4;
  gang.cp_size = 2;
  gang.attempt = 7;
  gang.stage = "long-512k";
  gang.stage_index = 2;
  v1::KubernetesLauncher k8s = ImageOnly();
  k8s.set_namespace_("training");
  k8s.set_service_account("prolong-worker");
  k8s.set_gpus_per_pod(1);
  k8s.set_cpu("12");
  k8s.set_memory("200Gi");
  (*k8s.mutable_node_selector())["cloud.google.com/gke-accelerator"] = "nvidia-h100-80gb";
  (*k8s.mutable_node_selector())["prolong.dev/dedicated"] = "true";
  const std::string yaml = RenderKubernetesGang(gang, k8s);
  ExpectValid(yaml);

  const std::string name = KubernetesJobName(gang);
  const Objects objects = Parse(yaml);
  EXPECT_EQ(objects.service["metadata"]["namespace"].as<std::string>(), "training");
  const YAML::Node& job = objects.job;
  EXPECT_EQ(job["metadata"]["namespace"].as<std::string>(), "training");
  EXPECT_EQ(job["spec"]["completions"].as<int>(), 8);
  EXPECT_EQ(job["spec"]["parallelism"].as<int>(), 8);
  EXPECT_EQ(StringMap(job["metadata"]["labels"]),
            (std::map<std::string, std::string>{{"app.kubernetes.io/name", "prolong-worker"},
                                                {"prolong.dev/run", "r-20261127-0001"},
                                                {"prolong.dev/attempt", "7"},
                                                {"prolong.dev/stage", "long-512k"}}));

  const YAML::Node pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(StringMap(job["spec"]["template"]["metadata"]["labels"]),
            StringMap(job["metadata"]["labels"]));
  EXPECT_EQ(pod["serviceAccountName"].as<std::string>(), "prolong-worker");
  EXPECT_EQ(
      StringMap(pod["nodeSelector"]),
      (std::map<std::string, std::string>{{"cloud.google.com/gke-accelerator", "nvidia-h100-80gb"},
                                          {"prolong.dev/dedicated", "true"}}));
  EXPECT_TRUE(IsQuoted(pod["nodeSelector"]["prolong.dev/dedicated"]));

  const YAML::Node container = pod["containers"][0];
  std::vector<std::string> expected = WorkerArgs(gang);
  expected.push_back(absl::StrCat("--rendezvous-host=", name, "-0.", name, ".training.svc"));
  expected.push_back("--rendezvous-port=29500");
  EXPECT_THAT(Strings(container["command"]), ElementsAreArray(expected));
  EXPECT_THAT(Strings(container["command"]),
              ::testing::Contains("--scheduler=prolong-scheduler.prolong.svc:50051"));
  EXPECT_THAT(Strings(container["command"]), ::testing::Contains("--world=8"));

  EXPECT_EQ(StringMap(container["resources"]["limits"]),
            (std::map<std::string, std::string>{
                {"cpu", "12"}, {"memory", "200Gi"}, {"nvidia.com/gpu", "1"}}));
  EXPECT_EQ(StringMap(container["resources"]["requests"]),
            (std::map<std::string, std::string>{{"cpu", "12"}, {"memory", "200Gi"}}));

  std::map<std::string, std::string> env;
  for (const YAML::Node& var : container["env"]) {
    env[var["name"].as<std::string>()] =
        var["value"] ? var["value"].as<std::string>()
                     : var["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>();
  }
  EXPECT_EQ(env["NCCL_DEBUG"], "WARN");
  EXPECT_EQ(env["NCCL_SOCKET_IFNAME"], "eth0");
  EXPECT_EQ(env["POD_NAME"], "metadata.name");
  EXPECT_EQ(env.count("NCCL_IB_DISABLE"), 0u);

  // The same spec renders the same bytes (the node selector is a protobuf map).
  EXPECT_EQ(RenderKubernetesGang(gang, k8s), yaml);
}

TEST(KubernetesManifestTest, LongRunIdIsShortenedAndHashed) {
  GangSpec gang = OneRankGang();
  gang.run_id = std::string("Pretrain_Llama-3/8B.64k-") + std::string(80, 'x');
  gang.attempt = 12;
  gang.dp_size = 64;
  gang.stage = "Stage 1: 64K context, the long one";
  const std::string name = KubernetesJobName(gang);
  EXPECT_LE(name.size(), 52u) << name;
  EXPECT_TRUE(IsDnsLabel(name)) << name;
  EXPECT_THAT(name, StartsWith("prolong-pretrain-llama-3-8b"));
  EXPECT_TRUE(absl::EndsWith(name, "-12")) << name;
  // The hash, not the kept prefix, keeps runs that differ only at the end apart.
  GangSpec other = gang;
  other.run_id.back() = 'y';
  EXPECT_NE(KubernetesJobName(other), name);
  // Runs that only differ in what had to be replaced too.
  other.run_id = "r_1";
  GangSpec another = gang;
  another.run_id = "r.1";
  EXPECT_NE(KubernetesJobName(other), KubernetesJobName(another));

  const std::string yaml = RenderKubernetesGang(gang, ImageOnly());
  ExpectValid(yaml);
  const Objects objects = Parse(yaml);
  const YAML::Node metadata = objects.job["metadata"];
  const std::string run_label = metadata["labels"]["prolong.dev/run"].as<std::string>();
  EXPECT_LE(run_label.size(), 63u);
  EXPECT_THAT(run_label, StartsWith("Pretrain_Llama-3-8B.64k-xxx"));
  EXPECT_EQ(metadata["annotations"]["prolong.dev/run-id"].as<std::string>(), gang.run_id);
  EXPECT_EQ(metadata["annotations"]["prolong.dev/stage"].as<std::string>(), gang.stage);
  EXPECT_THAT(
      Strings(objects.job["spec"]["template"]["spec"]["containers"][0]["command"]),
      ::testing::Contains(absl::StrCat("--rendezvous-host=", name, "-0.", name, ".default.svc")));
}

TEST(KubernetesManifestTest, ValuesThatLookLikeYamlStayStrings) {
  GangSpec gang = OneRankGang();
  gang.stage = "007";
  gang.job_args = {"--note=a: b #not a comment", "--path=$(HOME)/data", "--flag=yes", "- x",
                   "--quote=\"'\\"};
  v1::KubernetesLauncher k8s = ImageOnly();
  k8s.set_image("registry.local:5000/prolong/trainer:v1");
  k8s.set_memory("64Gi");
  const std::string yaml = RenderKubernetesGang(gang, k8s);
  ExpectValid(yaml);

  const Objects objects = Parse(yaml);
  EXPECT_EQ(objects.job["metadata"]["labels"]["prolong.dev/stage"].as<std::string>(), "007");
  EXPECT_TRUE(IsQuoted(objects.job["metadata"]["labels"]["prolong.dev/stage"]));
  const YAML::Node container = objects.job["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["image"].as<std::string>(), "registry.local:5000/prolong/trainer:v1");
  // Kubernetes would expand $(HOME); "$$" reaches the process as "$".
  EXPECT_THAT(Strings(container["command"]),
              ::testing::IsSupersetOf({"--note=a: b #not a comment", "--path=$$(HOME)/data",
                                       "--flag=yes", "- x", "--quote=\"'\\"}));
  EXPECT_EQ(StringMap(container["resources"]["limits"]),
            (std::map<std::string, std::string>{{"memory", "64Gi"}}));
}

TEST(KubernetesManifestTest, BrokenManifestsFailValidation) {
  const std::string yaml = RenderKubernetesGang(OneRankGang(), ImageOnly());
  ExpectValid(yaml);

  const testing::RunResult completions =
      Validate(ReplaceOnce(yaml, "completions: 1", "completions: two"));
  EXPECT_EQ(completions.exit_code, 1);
  EXPECT_THAT(completions.stderr_text, HasSubstr("completions must be integer"));

  const testing::RunResult image = Validate(
      ReplaceOnce(yaml, "image: \"ghcr.io/prolong/trainer:1.0\"", "imagePullPolicy: \"Always\""));
  EXPECT_EQ(image.exit_code, 1);
  EXPECT_THAT(image.stderr_text, HasSubstr("image is required"));

  // An unquoted number where Kubernetes wants a string (the Service's selector).
  const testing::RunResult label =
      Validate(ReplaceOnce(yaml, "\"prolong.dev/attempt\": \"1\"\n  publishNotReadyAddresses",
                           "\"prolong.dev/attempt\": 1\n  publishNotReadyAddresses"));
  EXPECT_EQ(label.exit_code, 1);
  EXPECT_THAT(label.stderr_text, HasSubstr("must be string"));

  // A Job name too long for its pods' hostnames.
  const std::string name = KubernetesJobName(OneRankGang());
  const size_t job = yaml.find("kind: \"Job\"");
  ASSERT_NE(job, std::string::npos);
  const std::string renamed =
      yaml.substr(0, job) +
      ReplaceOnce(yaml.substr(job), absl::StrCat("name: \"", name, "\"\n"),
                  absl::StrCat("name: \"", name, std::string(40, 'z'), "\"\n"));
  const testing::RunResult hostname = Validate(renamed);
  EXPECT_EQ(hostname.exit_code, 1);
  EXPECT_THAT(hostname.stderr_text, HasSubstr("not a valid DNS label"));

  const testing::RunResult not_yaml = Validate("kind: [Job\n");
  EXPECT_EQ(not_yaml.exit_code, 1);
  EXPECT_THAT(not_yaml.stderr_text, Not(HasSubstr("valid object")));
}

}  // namespace
}  // namespace prolong::scheduler
