#!/usr/bin/env bash
# Fetches Debian's CUDA build of LibTorch 2.6 (source package pytorch-cuda, Debian 13 "trixie",
# section contrib: libtorch-cuda-dev and libtorch-cuda-2.6, about 480 MB) into a cache folder,
# checks each package against the archive's SHA-256, and prints the folder, laid out as
# PROLONG_LIBTORCH wants it (include/, lib/):
#
#   PROLONG_LIBTORCH=$(tools/cuda/fetch_debian_libtorch.sh) bazel build --config=cuda //...
#
# This checks, on any machine, that the CUDA build compiles and links (the CUDA toolkit and NCCL
# headers and libraries from CUDA_HOME, default /usr/local/cuda). Binaries built so run where
# Debian 13's libraries are (glibc 2.38+, its CUDA 12 packages); for other GPU machines point
# PROLONG_LIBTORCH at the LibTorch that matches their CUDA, such as a PyTorch wheel's torch folder.
# Nothing is installed: the packages are unpacked into the cache only.
set -euo pipefail
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
index=$mirror/dists/trixie/contrib/binary-amd64/Packages.xz
packages=(libtorch-cuda-dev libtorch-cuda-2.6)
cache=${PROLONG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/prolong}/libtorch-cuda-2.6

if [[ ! -f $cache/.complete ]]; then
  echo "fetching Debian's CUDA LibTorch into $cache (about 480 MB)" >&2
  partial=$cache.partial
  rm -rf "$partial"
  mkdir -p "$partial/root"
  curl -fsS "$index" | xz -dc > "$partial/Packages"
  for package in "${packages[@]}"; do
    # The package's stanza: its file in the pool and that file's SHA-256.
    read -r file sum < <(awk -v want="$package" '
      /^Package: / { name = $2 } /^Filename: / { file = $2 } /^SHA256: / { sum = $2 }
      /^$/ { if (name == want) { print file, sum; exit } name = "" }' "$partial/Packages")
    [[ -n ${file:-} ]] || { echo "$package is not in $index" >&2; exit 1; }
    curl -fsS -o "$partial/$package.deb" "$mirror/$file"
    echo "$sum  $partial/$package.deb" | sha256sum --quiet -c - ||
      { echo "$package: SHA-256 differs from the archive's index" >&2; exit 1; }
    dpkg-deb -x "$partial/$package.deb" "$partial/root"
    rm "$partial/$package.deb"
  done
  rm "$partial/Packages"
  ln -s root/usr/include "$partial/include"
  ln -s root/usr/lib/x86_64-linux-gnu "$partial/lib"
  touch "$partial/.complete"
  rm -rf "$cache"
  mv "$partial" "$cache"
fi
echo "$cache"
