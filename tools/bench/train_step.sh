#!/usr/bin/env bash
# CPU training step: prolong's trainer against the same model and step in PyTorch Python
# (Debian's python3-torch, the same LibTorch and BLAS underneath), alternating, ROUNDS times, on
# one 4,096-token packed sequence of 4 documents, STEPS timed steps after a warm-up; prints
# tokens/s, the medians and the ratio.
# Then the memory of blockwise attention forward + backward at 4K to 32K tokens
# (ATTENTION_TOKENS="... 65536" adds 64K: about 6 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/bench/lib.sh
rounds=${ROUNDS:-3}
steps=${STEPS:-5}
bazel build //tools/bench:train_step_benchmark >/dev/null 2>&1
bench="$(bazel info bazel-bin 2>/dev/null)/tools/bench/train_step_benchmark"
tokens_per_second() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["tokens_per_second"])'; }

ours=()
reference=()
for round in $(seq "$rounds"); do
  ours+=("$("$bench" --mode=step --steps="$steps" | tokens_per_second)")
  reference+=("$(/usr/bin/python3 tools/bench/train_step_reference.py --steps="$steps" |
    tokens_per_second)")
  printf 'round %d: prolong %.0f tokens/s, PyTorch Python %.0f tokens/s\n' "$round" \
    "${ours[-1]}" "${reference[-1]}"
done
a=$(median "${ours[@]}")
b=$(median "${reference[@]}")
printf 'median: prolong %.0f tokens/s, PyTorch Python %.0f tokens/s, ratio %.2f\n' "$a" "$b" \
  "$(echo "$a / $b" | bc -l)"

for tokens in ${ATTENTION_TOKENS:-4096 8192 16384 32768}; do
  "$bench" --mode=attention --tokens="$tokens"
done
