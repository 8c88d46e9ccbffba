#!/usr/bin/env bash
# Single-thread encode throughput of our cl100k_base tokenizer against npm's tiktoken (OpenAI's
# Rust core compiled to WebAssembly), on the same text, alternating runs; prints each run, the
# medians, their ratio, and whether every id agrees. Text: the system's license texts and this
# repository's sources (prose and code), about 1 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/bench/lib.sh
rounds=${ROUNDS:-5}

bazel build //datamixer/tokenizer:tokenizer_benchmark //services/prolongctl >/dev/null 2>&1
bin=$(bazel info bazel-bin 2>/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
write_cl100k_ranks "$work/cl100k_base.tiktoken"
write_bench_text "$work/text.txt"
echo "text: $(wc -c <"$work/text.txt") bytes"

ours=()
reference=()
for round in $(seq "$rounds"); do
  mbps=$("$bin/datamixer/tokenizer/tokenizer_benchmark" --tokenizer="$work/cl100k_base.tiktoken" \
    --preset=cl100k_base --text="$work/text.txt" --benchmark_format=json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["bytes_per_second"]/1e6)')
  ours+=("$mbps")
  ref=$(node tools/npm/tiktoken_reference.js bench cl100k_base "$work/text.txt" 3 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["mb_per_s"])')
  reference+=("$ref")
  printf 'round %d: prolong %.2f MB/s, npm tiktoken %.2f MB/s\n' "$round" "$mbps" "$ref"
done

m_ours=$(median "${ours[@]}")
m_ref=$(median "${reference[@]}")
printf 'median: prolong %.2f MB/s, npm tiktoken %.2f MB/s, ratio %.2fx\n' "$m_ours" "$m_ref" \
  "$(echo "$m_ours / $m_ref" | bc -l)"

"$bin/services/prolongctl/prolongctl" tokenizer encode --tokenizer="$work/cl100k_base.tiktoken" \
  --preset=cl100k_base <"$work/text.txt" >"$work/ours.json"
node tools/npm/tiktoken_reference.js encode cl100k_base "$work/text.txt" >"$work/reference.json"
if cmp -s "$work/ours.json" "$work/reference.json"; then
  echo "ids: identical ($(tr ',' '\n' <"$work/ours.json" | wc -l) tokens)"
else
  echo "ids: DIFFER"
  exit 1
fi
