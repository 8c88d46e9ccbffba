#!/usr/bin/env bash
# On a GPU machine with PyTorch (and transformers for the Llama check): builds the trainer core
# against that PyTorch and runs tools/gpu/check.py (its arguments, --only and --kernels, pass
# through). tools/gpu/deps must have been made by tools/gpu/prepare.sh on a Debian machine and
# copied along. Results: ${OUT:-.}/gpu_check.json, then as Markdown tables (tools/gpu/report.py)
# at the end of the output.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -d tools/gpu/deps/include/absl ]] || { echo "run tools/gpu/prepare.sh first" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
export LD_LIBRARY_PATH="$PWD/tools/gpu/deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
python3 tools/gpu/check.py --out "${OUT:-.}/gpu_check.json" "$@" || status=$?
python3 tools/gpu/report.py "${OUT:-.}/gpu_check.json" || true
exit "$status"
