// Prints deploy/kubernetes/worker-gang.example.yaml: the scheduler's own rendering
// (RenderKubernetesGang) of one gang of an example run, after the file's header. The file is
// committed; //deploy:kubernetes_worker_gang_test fails when it and this output differ.
//
//   bazel run //deploy:render_example_gang > deploy/kubernetes/worker-gang.example.yaml

#include <iostream>

#include "prolong/v1/run_spec.pb.h"
#include "scheduler/launch/gang.h"
#include "scheduler/launch/kubernetes_manifest.h"

namespace {

constexpr char kHeader[] =
    R"(# What the scheduler renders for one gang (scheduler/launch/kubernetes_manifest.cc,
# RenderKubernetesGang): a headless Service and an Indexed Job with one pod per rank. It is not
# in kustomization.yaml: the scheduler makes one per attempt of each run; this one shows, and
# lets a test check, what that is.
#
# Filled from the RunSpec's resources.kubernetes: namespace, image, service_account,
# gpus_per_pod (limits nvidia.com/gpu), cpu and memory (requests and limits), node_selector.
# From the run: the names (prolong-<run id>-<attempt>), labels and annotations, completions =
# parallelism = dp x cp, and each rank's command: the trainer, --world, --dp, --cp, --scheduler
# (the scheduler's --advertise-address), --run-id, --attempt, the stage's job flags (shortened
# here), and the rendezvous on rank 0 (<job>-0.<service>.<namespace>.svc:29500). A rank's
# number is JOB_COMPLETION_INDEX, which the trainer reads.
# Fixed by the renderer: restartPolicy Never and backoffLimit 0 (the scheduler restarts whole
# gangs), NCCL_DEBUG=WARN, NCCL_SOCKET_IFNAME=eth0 (the pod network), POD_NAME, /dev/shm as a
# memory-backed emptyDir, terminationMessagePolicy FallbackToLogsOnError.
#
# Not in the rendering yet: a mount of the shared volume (/shared, for checkpoints) and of the
# run directory that --stage and --model-config name, and a --metrics-address other than the
# trainer's loopback default; the scheduler does not submit these gangs yet either.
#
# This is the output for the example in deploy/kubernetes/render_example_gang.cc (a run of
# ProLong stage 1 on 8 ranks, one GPU each); //deploy:kubernetes_worker_gang_test fails when
# the two differ. Regenerate with
#   bazel run //deploy:render_example_gang > deploy/kubernetes/worker-gang.example.yaml
)";

}  // namespace

int main() {
  namespace scheduler = prolong::scheduler;
  scheduler::GangSpec gang;
  gang.run_id = "prolong-8b-3f9a2c";
  gang.attempt = 1;
  gang.stage = "stage1-64k";
  gang.stage_index = 0;
  gang.dp_size = 8;
  gang.cp_size = 1;
  // scheduler.yaml's --advertise-address and --trainer-binary.
  gang.scheduler_address = "prolong-scheduler.prolong.svc:7400";
  gang.trainer_binary = "/opt/prolong/bin/trainer";
  const std::string run_dir = "/var/lib/prolong/scheduler/runs/prolong-8b-3f9a2c";
  gang.log_dir = run_dir + "/logs/attempt-1";
  // The first and the most telling of the stage's job flags (trainer/worker/worker_options.h
  // JobFlagArgs writes them all).
  gang.job_args = {
      "--datamixer=prolong-datamixer.prolong.svc:7410",
      "--stage=" + run_dir + "/stage-stage1-64k.textproto",
      "--seed=42",
      "--checkpoint-dir=/shared/checkpoints/prolong-8b/stage1-64k",
      "--checkpoint-every=500",
      "--device=cuda",
      "--precision=bf16",
      "--init-checkpoint=/shared/models/Llama-3-8B-Instruct",
  };

  prolong::v1::KubernetesLauncher k8s;
  k8s.set_namespace_("prolong");
  k8s.set_image("registry.example.com/prolong/prolong:0.1.0");
  k8s.set_service_account("prolong-worker");  // rbac.yaml
  k8s.set_gpus_per_pod(1);
  k8s.set_cpu("12");
  k8s.set_memory("160Gi");
  (*k8s.mutable_node_selector())["nvidia.com/gpu.present"] = "true";

  std::cout << kHeader << scheduler::RenderKubernetesGang(gang, k8s);
  return std::cout.good() ? 0 : 1;
}
