#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs sockserv into a temporary prefix and builds a consumer against it twice: with
# find_package(sockserv CONFIG) and with pkg-config. Both consumers must run and succeed. Then,
# for each optional dependency the library was built with (liburing, OpenSSL), a consumer on a
# machine without it is imitated: both routes must fail at once with a message naming it.
# The coroutine forms program is built with g++ and clang++ against the package and run.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKSERV_BUILD_TESTS=OFF \
  -DSOCKSERV_BUILD_EXAMPLES=OFF -DSOCKSERV_BUILD_TOOLS=OFF \
  -DSOCKSERV_WERROR="${SOCKSERV_WERROR:-OFF}" >/dev/null
cmake --build "$work/build" >/dev/null
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null

cmake -S tests/consumer -B "$work/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer"

export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
g++ tests/consumer/main.cpp -o "$work/consumer-pc" $(pkg-config --cflags --libs sockserv)
"$work/consumer-pc"

# The coroutine forms (issue 13) with both compilers a Debian 12 user has: every form works in a
# coroutine with a local; without one, GCC 12's miscompiled forms stop with the library's message.
for cxx in g++ clang++; do
  if ! command -v "$cxx" >/dev/null; then
    echo "install check: $cxx is missing (scripts/bootstrap.sh ci installs clang)"
    exit 1
  fi
  "$cxx" -std=c++20 -O1 tests/compilers/coroutine_forms.cpp -o "$work/forms-$cxx" \
    $(pkg-config --cflags --libs sockserv)
  echo "install check: coroutine forms built with $cxx:"
  "$work/forms-$cxx" | sed 's/^/  /'
done

# The dependencies this build declares (Requires for a static library, Requires.private for a
# shared one), read back from the installed .pc file.
requires=$(pkg-config --print-requires --print-requires-private sockserv)
expect_refusal() {  # expect_refusal WHAT PATTERN COMMAND...: COMMAND fails, naming PATTERN
  local out
  if out=$("${@:3}" 2>&1); then
    echo "install check: a consumer without $1 was not refused"
    exit 1
  fi
  if ! grep -q -- "$2" <<<"$out"; then
    echo "install check: the refusal without $1 does not name $2:"
    echo "$out"
    exit 1
  fi
}
if grep -q liburing <<<"$requires"; then
  expect_refusal liburing liburing-dev cmake -S tests/consumer -B "$work/no-uring" -G Ninja \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_DISABLE_FIND_PACKAGE_LibUring=ON
fi
if grep -q libssl <<<"$requires"; then
  expect_refusal OpenSSL libssl-dev cmake -S tests/consumer -B "$work/no-ssl" -G Ninja \
    -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_DISABLE_FIND_PACKAGE_OpenSSL=ON
fi
if [ -n "$requires" ]; then
  # Only our prefix on pkg-config's path: the system's liburing.pc and libssl.pc are "missing".
  first=$(head -n 1 <<<"$requires" | awk '{print $1}')
  expect_refusal "$first" "$first" env PKG_CONFIG_LIBDIR="$work/prefix/lib/pkgconfig" \
    PKG_CONFIG_PATH= pkg-config --libs sockserv
fi
echo "install check: CMake package and pkg-config both work; missing dependencies are named;"
echo "  the coroutine forms behave with g++ and clang++"
