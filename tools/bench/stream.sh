#!/usr/bin/env bash
# StreamBatches over loopback: a real datamixer process serving 4 data-parallel ranks (each on
# its own connection, one 65536-token sequence a step) against a bare gRPC server that writes
# the same Batch bytes with nothing behind them, alternating, ROUNDS times; prints tokens/s,
# the ratio and the p99 time between consecutive batches at a client.
set -euo pipefail
cd "$(dirname "$0")/../.."
bazel build //tools/bench:stream_batches_benchmark //services/datamixer >/dev/null 2>&1
bin=$(bazel info bazel-bin 2>/dev/null)
"$bin/tools/bench/stream_batches_benchmark" --datamixer="$bin/services/datamixer/datamixer" \
  --rounds="${ROUNDS:-3}" --clients="${CLIENTS:-4}" --steps="${STEPS:-100}" "$@"
