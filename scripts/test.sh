#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds everything and runs the whole test suite: scripts/test.sh [PRESET] (default: debug;
# also asan, tsan, release). SOCKSERV_WERROR=ON makes warnings errors (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-debug}
scripts/bootstrap.sh test
cmake --preset "$preset" -DSOCKSERV_WERROR="${SOCKSERV_WERROR:-OFF}" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
