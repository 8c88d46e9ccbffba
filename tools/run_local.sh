#!/usr/bin/env bash
# Sets up this machine, builds prolong and runs the main job on the embedded default: the
# quickstart (tools/quickstart/quickstart.sh). It builds a demo corpus and a tokenizer, starts
# the local single-machine stack (`prolongctl up`: datamixer, evaluator, scheduler), trains
# recipes/tiny.yaml through it (ProLong's stages at small scale), prints each stage's scores and
# loss by position, and keeps the stack running until Ctrl-C. State, stores and logs go to
# $PROLONG_HOME/quickstart (default ~/.prolong/quickstart); a rerun reuses them.
#
#   tools/run_local.sh           the quickstart, then the stack until Ctrl-C
#   tools/run_local.sh --check   start the plain stack, check each service's /metrics, stop
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "" | --check) ;;
  *) echo "usage: tools/run_local.sh [--check]" >&2; exit 2 ;;
esac

tools/setup.sh
bazel build //services/...
bin=$(bazel info bazel-bin 2>/dev/null)/services

if [[ "${1:-}" == --check ]]; then
  home=${PROLONG_HOME:-$HOME/.prolong}
  mkdir -p "$home"
  # The plain stack's datamixer tokenizes ingests with cl100k_base (the rank file comes from
  # npm's tiktoken, installed by setup); `prolongctl up` finds it in the home directory.
  if [[ ! -s "$home/cl100k_base.tiktoken" ]]; then
    node tools/npm/tiktoken_reference.js ranks cl100k_base >"$home/cl100k_base.tiktoken.tmp"
    mv "$home/cl100k_base.tiktoken.tmp" "$home/cl100k_base.tiktoken"
  fi
  exec "$bin/prolongctl/prolongctl" up --home "$home" --check
fi
exec tools/quickstart/quickstart.sh --bin "$bin" --stay
