#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs sockserv into a temporary prefix and builds a consumer against it twice: with
# find_package(sockserv CONFIG) and with pkg-config. Both consumers must run and succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKSERV_BUILD_TESTS=OFF \
  -DSOCKSERV_BUILD_EXAMPLES=OFF -DSOCKSERV_BUILD_TOOLS=OFF >/dev/null
cmake --build "$work/build" >/dev/null
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null

cmake -S tests/consumer -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
g++ tests/consumer/main.cpp -o "$work/consumer-pc" $(pkg-config --cflags --libs sockserv)
"$work/consumer-pc"
echo "install check: CMake package and pkg-config both work"
