#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages a sockserv task needs, and only those that are missing, so the
# README's commands work on a fresh Debian 12 machine.
#   scripts/bootstrap.sh build   compiler, CMake, Ninja, CLI11, OpenSSL 3 (TLS), liburing
#                                (enough to run the server)
#   scripts/bootstrap.sh test    + GoogleTest, Python 3, nc, socat, nginx with its stream module,
#                                iproute2, the openssl and gnutls-cli clients (the TLS interop
#                                tests; nginx_proxy_test, network namespaces), redis-cli (the
#                                RESP example's test), promtool (Debian's prometheus: the
#                                metrics test checks the exposition format with it)
#   scripts/bootstrap.sh package build + help2man (the man page), dpkg-dev (dpkg-shlibdeps) for
#                                `cpack --preset package`, and debootstrap, with which
#                                scripts/check-packages.sh makes a fresh Debian 12 to try them
#   scripts/bootstrap.sh ci      + clang and its libFuzzer runtime, clang-format, pkg-config,
#                                doxygen (the API reference check, scripts/check-docs.sh),
#                                matplotlib (compare_plot: compare.py --plot; 48 packages, about
#                                80 s to install, so CI checks the charts too), and the package
#                                group's tools
#   scripts/bootstrap.sh bench   + Google Benchmark, Asio, libuv, redis-server (benchmark peers),
#                                matplotlib
set -euo pipefail

build=(cmake ninja-build g++ libcli11-dev libssl-dev liburing-dev)
test=("${build[@]}" libgtest-dev libgmock-dev python3 netcat-openbsd socat procps nginx
      libnginx-mod-stream iproute2 openssl gnutls-bin strace redis-tools prometheus)
package=("${build[@]}" help2man dpkg-dev debootstrap)
ci=("${test[@]}" clang libclang-rt-14-dev clang-format pkg-config libbenchmark-dev doxygen
    python3-matplotlib help2man dpkg-dev debootstrap)
bench=("${test[@]}" libbenchmark-dev libasio-dev libuv1-dev redis-server python3-matplotlib)

case "${1:-test}" in
  build) wanted=("${build[@]}") ;;
  test) wanted=("${test[@]}") ;;
  package) wanted=("${package[@]}") ;;
  ci) wanted=("${ci[@]}") ;;
  bench) wanted=("${bench[@]}") ;;
  *) echo "usage: $0 build|test|package|ci|bench" >&2; exit 2 ;;
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
# The tests start their own nginx on loopback ports: the distribution's service must not start
# (and take port 80) when the package is installed. A policy-rc.d that exits 101 tells the
# packages' maintainer scripts not to start services; one that already exists is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
