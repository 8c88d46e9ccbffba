#!/usr/bin/env bash
# Gathers what tools/gpu/check.py needs on a GPU machine that has PyTorch but no Debian
# libraries: Abseil's and nlohmann-json's headers and Abseil's shared libraries, into
# tools/gpu/deps (not tracked; about 8 MB). Run on a Debian machine with tools/setup.sh done.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf deps
mkdir -p deps/include deps/lib
cp -r /usr/include/absl /usr/include/nlohmann deps/include/
for library in /usr/lib/x86_64-linux-gnu/libabsl_*.so; do
  cp -L "$library" deps/lib/                              # libabsl_x.so, for the linker
  cp -L "$(readlink -f "$library")" deps/lib/ 2>/dev/null || true
  soname=$(objdump -p "$library" | awk '/SONAME/ {print $2}')
  cp -L "$library" "deps/lib/$soname"                     # what the loader asks for
done
du -sh deps
