#!/usr/bin/env bash
# Sets up this machine, builds prolong and runs the embedded default: the local single-machine
# stack (`prolongctl up`: datamixer, evaluator, scheduler) on their default ports until Ctrl-C.
# State, stores and logs go to $PROLONG_HOME (default ~/.prolong).
#
#   tools/run_local.sh           run until Ctrl-C
#   tools/run_local.sh --check   start, check each service's /metrics, stop (exit 0 if all good)
set -euo pipefail
cd "$(dirname "$0")/.."

up_args=()
case "${1:-}" in
  "") ;;
  --check) up_args+=(--check) ;;
  *) echo "usage: tools/run_local.sh [--check]" >&2; exit 2 ;;
esac

tools/setup.sh
bazel build //services/...
bin=$(bazel info bazel-bin 2>/dev/null)/services

home=${PROLONG_HOME:-$HOME/.prolong}
mkdir -p "$home"
# The datamixer tokenizes ingests with cl100k_base (the rank file comes from npm's tiktoken,
# installed by setup); `prolongctl up` finds it in the home directory.
if [[ ! -s "$home/cl100k_base.tiktoken" ]]; then
  node tools/npm/tiktoken_reference.js ranks cl100k_base >"$home/cl100k_base.tiktoken.tmp"
  mv "$home/cl100k_base.tiktoken.tmp" "$home/cl100k_base.tiktoken"
fi
exec "$bin/prolongctl/prolongctl" up --home "$home" "${up_args[@]}"
