#!/usr/bin/env bash
# Installs every Debian package prolong needs to build, test and run. Idempotent: when all
# packages are present it only checks them and returns in seconds.
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
)

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
