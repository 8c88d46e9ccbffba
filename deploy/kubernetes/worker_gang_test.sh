#!/usr/bin/env bash
# worker-gang.example.yaml must be the scheduler's own rendering of its example gang, byte for
# byte (render_example_gang.cc calls RenderKubernetesGang).
set -euo pipefail
expected=deploy/kubernetes/worker-gang.example.yaml
rendered="${TEST_TMPDIR:-$(mktemp -d)}/worker-gang.yaml"
deploy/render_example_gang >"$rendered"
if ! diff -u "$expected" "$rendered"; then
  echo "$expected is not what the scheduler renders (diff above: - committed, + rendered)." >&2
  echo "Regenerate: bazel run //deploy:render_example_gang > $expected" >&2
  exit 1
fi
echo "$expected is the scheduler's rendering"
