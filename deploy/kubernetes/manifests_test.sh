#!/usr/bin/env bash
# deploy/kubernetes, offline: every manifest against Kubernetes' API schemas and the API
# server's naming rules (scheduler/launch/validate_k8s.js over npm's kubernetes-models), then
# against itself and the binaries (check_manifests.js: the kustomization lists every manifest,
# flags exist, names and ports agree), then the whole as `kubectl kustomize` builds it.
set -euo pipefail
dir=deploy/kubernetes
# The validator and the binaries' flag sources live in packages //deploy may not depend on:
# from the runfiles when a build declares them, else from the source tree this script is in.
root=.
if [[ ! -f scheduler/launch/validate_k8s.js ]]; then
  root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
fi
validator=$root/scheduler/launch/validate_k8s.js

manifests=()
objects=0
for file in "$dir"/*.yaml; do
  [[ $(basename "$file") == kustomization.yaml ]] && continue
  manifests+=("$file")
done
node "$validator" "${manifests[@]}"

node "$dir/check_manifests.js" "$dir" \
  scheduler="$root/services/scheduler/main.cc" \
  datamixer="$root/services/datamixer/main.cc" \
  evaluator="$root/services/evaluator/main.cc" \
  trainer="$root/services/trainer/main.cc" \
  trainer="$root/trainer/worker/worker_options.cc" \
  "*=$root/common/cli.cc"

# kubectl's built-in kustomize needs no cluster. The build must hold every object of the listed
# manifests, with the image set.
if ! command -v kubectl >/dev/null; then
  echo "kubectl is not installed: the kustomize build is not checked"
  exit 0
fi
tmp=${TEST_TMPDIR:-$(mktemp -d)}
# kustomize does not read files through the runfiles' symbolic links.
mkdir -p "$tmp/kubernetes"
cp -L "$dir"/*.yaml "$tmp/kubernetes/"
built=$tmp/kustomized.yaml
kubectl kustomize "$tmp/kubernetes" >"$built"
result=$(node "$validator" "$built")
echo "$result"
for file in $(sed -n 's/^  - \([a-z0-9.-]*\.yaml\)$/\1/p' "$dir/kustomization.yaml"); do
  count=$(node "$validator" "$dir/$file" | sed -n 's/.*: \([0-9]*\) valid object(s)$/\1/p')
  objects=$((objects + count))
done
if [[ $result != *": $objects valid object(s)" ]]; then
  echo "kustomize built other objects than the $objects of the listed manifests" >&2
  exit 1
fi
if grep -nE '^\s*image: prolong\s*$' "$built"; then
  echo "kustomization.yaml's images did not set every container's image" >&2
  exit 1
fi
echo "kustomize: the $objects objects, every image set"
