#!/usr/bin/env bash
# Installs what pfa needs on Debian 12 when it is missing, then configures and builds pfa.
# Usage: cli/setup.sh   (build folder: $PFA_BUILD_DIR, default build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages=(cmake ninja-build g++ git libtorch-dev libxgboost-dev libtbb-dev libboost-dev
          libsqlite3-dev libdlpack-dev libgtest-dev libcli11-dev nlohmann-json3-dev libfmt-dev
          libopenblas0-pthread libkissfft-dev clang libclang-rt-14-dev python3-torch
          chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "pfa setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
build="${PFA_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build" -j"$(nproc)"
