#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole comparison in one command: installs the bench tier's packages (Asio, libuv, Google
# Benchmark), configures and builds the release preset's sockserv tool and peer servers, and runs
# bench/compare.py with the arguments given.
#   bench/run.sh --quick                   a one-second smoke run of every cell
#   bench/run.sh --repeats 3 --write       the recorded run: the table goes into docs/BENCHMARKS.md
#   bench/run.sh --tls --write             the TLS servers (certificates made with the openssl
#                                          command; about 5 minutes), into the TLS section
# BUILD_DIR=DIR builds in DIR (Release, SOCKSERV_BUILD_BENCH=ON) instead of the release preset's
# build/release; JOBS=N sets the build's parallelism (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh bench
targets=(--target sockserv_cli bench_peers)
if [ -n "${BUILD_DIR:-}" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSOCKSERV_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD_DIR" -j "${JOBS:-2}" "${targets[@]}" >&2
else
  BUILD_DIR=build/release
  cmake --preset release >/dev/null
  cmake --build --preset release -j "${JOBS:-2}" "${targets[@]}" >&2
fi
# Debian's python3, where scripts/bootstrap.sh installed matplotlib (--plot), even when a pyenv or
# venv python3 comes first in PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" bench/compare.py --build-dir "$BUILD_DIR" "$@"
