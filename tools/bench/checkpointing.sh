#!/usr/bin/env bash
# CPU training step with activation checkpointing none, full and selective (attention kept),
# alternating, ROUNDS times, on one packed sequence of TOKENS tokens in DOCUMENTS documents
# (long documents: attention dominates), STEPS timed steps after a warm-up; prints tokens/s and
# the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/bench/lib.sh
rounds=${ROUNDS:-3}
steps=${STEPS:-2}
tokens=${TOKENS:-8192}
documents=${DOCUMENTS:-1}
bazel build //tools/bench:train_step_benchmark >/dev/null 2>&1
bench="$(bazel info bazel-bin 2>/dev/null)/tools/bench/train_step_benchmark"
tokens_per_second() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["tokens_per_second"])'; }

declare -A results
for round in $(seq "$rounds"); do
  for mode in none full selective; do
    value=$("$bench" --mode=step --tokens="$tokens" --documents="$documents" --steps="$steps" \
      --checkpointing="$mode" | tokens_per_second)
    results[$mode]+="$value "
    printf 'round %d: %-9s %.1f tokens/s\n' "$round" "$mode" "$value"
  done
done
for mode in none full selective; do
  # shellcheck disable=SC2086
  printf 'median: %-9s %.1f tokens/s\n' "$mode" "$(median ${results[$mode]})"
done
