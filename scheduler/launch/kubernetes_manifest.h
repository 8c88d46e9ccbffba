// The Kubernetes objects of one gang, as YAML for `kubectl apply -f -`:
//
//   - a headless Service whose DNS records name every pod (published before the pods are ready,
//     since the workers rendezvous before they could pass any readiness check), and
//   - an Indexed Job with one pod per rank (completions = parallelism = world size). Kubernetes
//     gives each pod JOB_COMPLETION_INDEX, which the trainer takes as its rank, and the hostname
//     <job>-<index> under the Service's subdomain, so rank 0, which hosts the gang's TCP store,
//     is reachable at <job>-0.<service>.<namespace>.svc.
//
// Kubernetes never restarts a pod or retries the Job (backoffLimit 0, restartPolicy Never): a
// gang whose rank fails is over, and the scheduler decides whether to launch another attempt.
// The Service is not owned by the Job: whoever deletes the Job deletes the Service too (both are
// named KubernetesJobName(gang) and carry the gang's labels, so a label selector finds both).
//
// The RunSpec's validation is expected to have checked k8s (image set, quantities well formed);
// whatever it holds is rendered as quoted strings, so no value can change the YAML's structure.
#ifndef PROLONG_SCHEDULER_LAUNCH_KUBERNETES_MANIFEST_H_
#define PROLONG_SCHEDULER_LAUNCH_KUBERNETES_MANIFEST_H_

#include <string>

#include "prolong/v1/run_spec.pb.h"
#include "scheduler/launch/gang.h"

namespace prolong::scheduler {

// The port of the gang's TCP store on rank 0, named "rendezvous" in the Service.
inline constexpr int kKubernetesRendezvousPort = 29500;

// The name of the gang's Job and of its Service: "prolong-<run id>-<attempt>", lowercased, with
// characters Kubernetes does not allow replaced by '-'. When the run id had to be changed or
// shortened, a hash of it keeps names of different runs apart. At most 52 characters, so pod
// hostnames ("<name>-<index>") stay valid DNS labels (63) for any world size.
std::string KubernetesJobName(const GangSpec& gang);

// The Service and the Job of `gang` as a YAML stream of two documents. Every rank runs
// WorkerArgs(gang) plus --rendezvous-host=<job>-0.<service>.<namespace>.svc and
// --rendezvous-port=29500 (with '$' escaped, so Kubernetes passes arguments as they are).
// The namespace is k8s.namespace, or "default" when empty.
std::string RenderKubernetesGang(const GangSpec& gang, const v1::KubernetesLauncher& k8s);

}  // namespace prolong::scheduler

#endif  // PROLONG_SCHEDULER_LAUNCH_KUBERNETES_MANIFEST_H_
