#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages a sockserv task needs, and only those that are missing, so the
# README's commands work on a fresh Debian 12 machine.
#   scripts/bootstrap.sh build   compiler, CMake, Ninja, CLI11 (enough to run the server)
#   scripts/bootstrap.sh test    + GoogleTest, Python 3, nc, socat (the test suite)
#   scripts/bootstrap.sh ci      + clang and its libFuzzer runtime, clang-format, pkg-config
#   scripts/bootstrap.sh bench   + Google Benchmark, Asio, libuv (benchmark peers)
set -euo pipefail

build=(cmake ninja-build g++ libcli11-dev)
test=("${build[@]}" libgtest-dev libgmock-dev python3 netcat-openbsd socat procps)
ci=("${test[@]}" clang libclang-rt-14-dev clang-format pkg-config libbenchmark-dev)
bench=("${test[@]}" libbenchmark-dev libasio-dev libuv1-dev)

case "${1:-test}" in
  build) wanted=("${build[@]}") ;;
  test) wanted=("${test[@]}") ;;
  ci) wanted=("${ci[@]}") ;;
  bench) wanted=("${bench[@]}") ;;
  *) echo "usage: $0 build|test|ci|bench" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
