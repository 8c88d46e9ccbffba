#!/usr/bin/env bash
# Sets up this machine, builds prolong and runs the embedded default: the local single-machine
# stack (scheduler, datamixer, evaluator) on their default ports, each health-checked with
# prolongctl, until Ctrl-C. Logs go to $PROLONG_HOME/logs (default ~/.prolong/logs).
#
#   tools/run_local.sh           run until Ctrl-C
#   tools/run_local.sh --check   start, check health and /metrics, stop (exit 0 if all good)
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=false
case "${1:-}" in
  "") ;;
  --check) check_only=true ;;
  *) echo "usage: tools/run_local.sh [--check]" >&2; exit 2 ;;
esac

tools/setup.sh
bazel build //services/...
bin=$(bazel info bazel-bin 2>/dev/null)/services

home=${PROLONG_HOME:-$HOME/.prolong}
mkdir -p "$home/logs"

# name grpc-port metrics-port service
stack=(
  "scheduler 7400 7401 prolong.v1.Scheduler"
  "datamixer 7410 7411 prolong.v1.DataMixer"
  "evaluator 7420 7421 prolong.v1.Evaluator"
)

# The datamixer serves (and accepts ingests into) a store under $PROLONG_HOME, tokenized with
# cl100k_base (the rank file comes from npm's tiktoken, installed by setup).
if [[ ! -s "$home/cl100k_base.tiktoken" ]]; then
  node tools/npm/tiktoken_reference.js ranks cl100k_base >"$home/cl100k_base.tiktoken.tmp"
  mv "$home/cl100k_base.tiktoken.tmp" "$home/cl100k_base.tiktoken"
fi
declare -A args=(
  [datamixer]="--store=$home/store --tokenizer=$home/cl100k_base.tiktoken --preset=cl100k_base"
  [evaluator]="--store=$home/eval-results"
)

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

for entry in "${stack[@]}"; do
  read -r name port metrics_port _ <<<"$entry"
  # shellcheck disable=SC2086  # the extra arguments are words
  "$bin/$name/$name" --address="127.0.0.1:$port" --metrics-address="127.0.0.1:$metrics_port" \
    ${args[$name]:-} >"$home/logs/$name.log" 2>&1 &
  pids+=($!)
done

healthy=true
for entry in "${stack[@]}"; do
  read -r name port metrics_port service <<<"$entry"
  if ! "$bin/prolongctl/prolongctl" health "127.0.0.1:$port" --service="$service" \
      --wait-seconds=30 >/dev/null; then
    echo "$name did not become healthy; its log ($home/logs/$name.log) ends with:" >&2
    tail -n 5 "$home/logs/$name.log" >&2
    healthy=false
  elif ! curl -fsS "http://127.0.0.1:$metrics_port/metrics" | grep -q '^prolong_build_info'; then
    echo "$name serves no /metrics on 127.0.0.1:$metrics_port" >&2
    healthy=false
  else
    printf '%-10s grpc 127.0.0.1:%s  metrics http://127.0.0.1:%s/metrics  log %s\n' \
      "$name" "$port" "$metrics_port" "$home/logs/$name.log"
  fi
done
$healthy || exit 1

if $check_only; then
  echo "local stack healthy; stopping (--check)"
  exit 0
fi
echo "local stack up; Ctrl-C stops it"
wait
