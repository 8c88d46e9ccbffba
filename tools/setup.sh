#!/usr/bin/env bash
# Installs every Debian package prolong needs to build, test and run; with --fuzz also clang
# and libFuzzer for fuzz/run.sh. Idempotent: when all packages are present it only checks them
# and returns in seconds.
set -euo pipefail

packages=(
  # Build: Bazel 4 from Debian and the rule repositories it loads offline.
  bazel-bootstrap bazel-rules-java bazel-platforms g++ pkg-config
  # RPC and schema.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev
  # Training: LibTorch (with c10d/Gloo inside), a fast BLAS for it, Gloo headers.
  libtorch-dev libopenblas0-pthread libgloo-dev
  # Data: RocksDB shards, tokenizers, formats, compression.
  librocksdb-dev rocksdb-tools libsentencepiece-dev sentencepiece libpcre2-dev libre2-dev
  libsimdjson-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libzstd-dev liblz4-dev
  # Observability: the metrics library and promtool for checking our /metrics output.
  prometheus-cpp-dev prometheus
  # Tests and benchmarks.
  googletest libgtest-dev libgmock-dev libbenchmark-dev curl python3 python3-grpcio
  python3-nltk wamerican
  # The model tests compare against an independent Python (PyTorch) Llama reference.
  python3-torch python3-numpy
  # The Slurm launcher's tests start a real one-node cluster (slurmctld, slurmd, munged).
  slurm-wlm munge
  # The sanitizer test sets (tools/sanitizers.sh): gcc's runtimes.
  libasan8 libubsan1 libtsan2
)
[ "${1:-}" != "--fuzz" ] || packages+=(clang-14 libclang-rt-14-dev)
# Node.js runs the reference tokenizer (npm's tiktoken) in parity tests and benchmarks. The
# machines may carry a Node.js of their own with npm inside; only without one take Debian's.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#packages[@]} packages present"
fi

# The npm packages of tools/npm, at the versions its lock file pins.
cd "$(dirname "$0")/npm"
if ! node -e 'const want = require("./package.json").dependencies;
  for (const [name, version] of Object.entries(want))
    if (require(`./node_modules/${name}/package.json`).version !== version) process.exit(1);' \
    2>/dev/null; then
  echo "setup: installing tools/npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
