#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak test (issue 11): scripts/soak.sh MINUTES [SOCKSERV_BINARY] [--keep] [--rss-slack-mib N]
# Mixed load for MINUTES (fractions allowed: 0.5) against a server of every mode at once, plus
# a TLS server reloaded by SIGHUP; every byte checked, every reply counted, then fds, threads,
# children and memory back to the baseline and a clean exit (scripts/soak.py says what it
# does). Loopback only. The binary defaults to build/debug/tools/sockserv, built when missing.
# Under a sanitizer build a report aborts the server, which fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
minutes=$1
shift
binary=build/debug/tools/sockserv
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  binary=$1
  shift
elif [ ! -x "$binary" ]; then
  scripts/bootstrap.sh build
  cmake --preset debug >/dev/null
  cmake --build --preset debug --target sockserv_cli
fi
[ -x "$binary" ] || { echo "soak: no executable $binary" >&2; exit 2; }
command -v openssl >/dev/null || scripts/bootstrap.sh test
# Sanitizer builds: any report ends the process with a non-zero status (no-ops otherwise).
# ASan's quarantine of freed memory (256 MiB by default) would grow the RSS past the
# tolerance: 16 MiB keeps it inside; leaks are LeakSanitizer's to find, at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:halt_on_error=1:detect_leaks=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
exec python3 scripts/soak.py "$minutes" "$binary" "$@"
