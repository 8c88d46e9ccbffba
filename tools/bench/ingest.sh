#!/usr/bin/env bash
# Ingest throughput: MB of JSONL text per second into a fresh store with 1 and with 2
# tokenizing threads (cl100k_base), alternating, ROUNDS times; prints the medians, MB/s per
# core and the scaling from 1 to 2 threads. Corpus: the license texts and this repository's
# sources cut into ~4 KB documents, numbered so that none is a duplicate, about 24 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/bench/lib.sh
rounds=${ROUNDS:-3}

bazel build //services/prolongctl >/dev/null 2>&1
prolongctl="$(bazel info bazel-bin 2>/dev/null)/services/prolongctl/prolongctl"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
write_cl100k_ranks "$work/cl100k_base.tiktoken"
write_bench_text "$work/text.txt"
python3 - "$work/text.txt" "$work/corpus.jsonl" <<'PY'
import json, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
with open(sys.argv[2], "w") as out:
    n, size = 0, 0
    while size < 24_000_000:
        for start in range(0, len(text), 4000):
            line = json.dumps({"text": f"document {n}\n" + text[start:start + 4000]})
            out.write(line + "\n")
            n += 1
            size += len(line) + 1
PY
bytes=$(wc -c <"$work/corpus.jsonl")
echo "corpus: $bytes bytes"

run() {  # threads -> MB/s
  rm -rf "$work/store"
  local start end
  start=$(date +%s.%N)
  "$prolongctl" data ingest --store "$work/store" --domain bench --format jsonl \
    --tokenizer "$work/cl100k_base.tiktoken" --preset cl100k_base --threads "$1" \
    "$work/corpus.jsonl" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$bytes / ($end - $start) / 1000000" | bc -l
}

one=()
two=()
for round in $(seq "$rounds"); do
  one+=("$(run 1)")
  two+=("$(run 2)")
  printf 'round %d: 1 thread %.2f MB/s, 2 threads %.2f MB/s\n' "$round" "${one[-1]}" "${two[-1]}"
done
m1=$(median "${one[@]}")
m2=$(median "${two[@]}")
printf 'median: 1 thread %.2f MB/s, 2 threads %.2f MB/s (%.2f MB/s per core), scaling %.2fx\n' \
  "$m1" "$m2" "$(echo "$m2 / 2" | bc -l)" "$(echo "$m2 / $m1" | bc -l)"
