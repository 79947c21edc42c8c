#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the sockserv command (release) and runs `sockserv serve` with the given options.
# With none, that is the seed's server: upper-case echo on localhost:9999.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh build
cmake --preset release -DSOCKSERV_BUILD_TESTS=OFF -DSOCKSERV_BUILD_EXAMPLES=OFF \
  -DSOCKSERV_BUILD_BENCH=OFF >/dev/null
cmake --build --preset release --target sockserv_cli >/dev/null
exec build/release/tools/sockserv serve "$@"
