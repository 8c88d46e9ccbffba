#!/usr/bin/env bash
# StreamBatches at 65,536 tokens from documents of 262,144 and at 524,288 from documents of
# 1,048,576 (ProLong's stage 1 and stage 2 lengths), each from a store of whole documents (the
# layout before chunking: every sequence reads its whole document) and one of chunked documents,
# alternating within each round, with the bare gRPC stream as the baseline. Both lengths stream
# the same tokens per round (4 clients x STEPS_64K x 64K = 4 x STEPS_512K x 512K).
set -euo pipefail
cd "$(dirname "$0")/../.."
bazel build //tools/bench:stream_batches_benchmark //services/datamixer >/dev/null 2>&1
bin=$(bazel info bazel-bin 2>/dev/null)
run() {
  "$bin/tools/bench/stream_batches_benchmark" --datamixer="$bin/services/datamixer/datamixer" \
    --rounds="${ROUNDS:-5}" --clients=4 --layouts=whole,chunked "$@"
}
echo "== seq_len 65536, documents of 262144 tokens"
run --seq_len=65536 --document_tokens=262144 --steps="${STEPS_64K:-200}"
echo "== seq_len 524288, documents of 1048576 tokens"
run --seq_len=524288 --document_tokens=1048576 --steps="${STEPS_512K:-25}"
