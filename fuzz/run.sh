#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the fuzz targets (preset "fuzz", clang++ with libFuzzer + ASan + UBSan) and runs each for
# DURATION_SECONDS (default 20) from a small hand-made seed corpus, plus the committed binary seeds
# of fuzz/corpus/ (TLS client flights captured from `openssl s_client`). Exits non-zero if any
# target crashes, leaks, times out or breaks one of its checked properties; the reproducer is
# saved as BUILD/artifacts/<target>-crash-*  (rerun it with: BUILD/fuzz/<target> <file>).
#
#   fuzz/run.sh 20
#   SOCKSERV_FUZZ_BUILD_DIR=build/my-fuzz fuzz/run.sh 60   # another build directory
set -euo pipefail

duration=${1:-20}
cd "$(dirname "$0")/.."
build=${SOCKSERV_FUZZ_BUILD_DIR:-build/fuzz}

# The build is capped at 2 jobs: CI machines have 2 cores.
if [[ -n ${SOCKSERV_FUZZ_BUILD_DIR:-} ]]; then
  cmake --preset fuzz -B "$build" >/dev/null
  cmake --build "$build" -j 2
else
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j 2
fi

# seed TARGET NAME BYTES: one seed input (printf escapes; the first byte configures the codec,
# see each fuzz_*.cpp).
seed() {
  mkdir -p "$build/corpus-$1"
  printf "$3" >"$build/corpus-$1/$2"
}
seed fuzz_fixed_length two '\x04abcdefgh'
seed fuzz_fixed_length partial '\x02abc'
seed fuzz_delimiter lines '\xf8hello\nworld\n\npartial'
seed fuzz_delimiter http '\xf9GET / HTTP/1.0\r\nHost: x\r\n\r\n'
seed fuzz_delimiter overlap '\xfbaaabxaabaab'
seed fuzz_delimiter too-long '\x08123456789\n'
seed fuzz_length_prefix u16 '\x80\x00\x05hello\x00\x00'
seed fuzz_length_prefix u32 '\x81\x00\x00\x00\x03abc\x00\x00\x00'
seed fuzz_length_prefix u64 '\x82\x00\x00\x00\x00\x00\x00\x00\x02hi'
seed fuzz_length_prefix ascii5 '\x1300005hello00000'
seed fuzz_length_prefix oversized '\x01\xff\xff\xff\xff'
seed fuzz_type_prefix all 'PFabcS\x00\x02hiM\x00\x00\x00\x01xL\x00\x00\x00\x00\x00\x00\x00\x00P'
seed fuzz_type_prefix unknown 'PZ'
seed fuzz_close_terminated body '\x03the whole body'
seed fuzz_close_terminated empty '\x02'
seed fuzz_close_terminated too-large '\x01ab'
seed fuzz_readline lines '\x10\x03line one\nline two\n\nlast'
seed fuzz_readline too-long '\x04\x01toolongline\n'
seed fuzz_readline empty '\x00\x00'

seed fuzz_proxy_header v1 'PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\nGET /'
seed fuzz_proxy_header v1-unknown 'PROXY UNKNOWN\r\n'
seed fuzz_proxy_header v2 '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x09\xc0\x00\x02\x01\x9c\x40\x01\xbb'
# Binary seeds, committed: fuzz/corpus/NAME/*.bin seed fuzz_NAME.
for dir in fuzz/corpus/*/; do
  [[ -d $dir ]] || continue
  name=$(basename "$dir")
  mkdir -p "$build/corpus-fuzz_$name"
  cp "$dir"*.bin "$build/corpus-fuzz_$name/"
done

targets=(fuzz_fixed_length fuzz_delimiter fuzz_length_prefix fuzz_type_prefix
         fuzz_close_terminated fuzz_readline fuzz_proxy_header)
# Built only when sockserv has TLS (OpenSSL 3).
if [[ -x $build/fuzz/fuzz_tls_handshake ]]; then
  targets+=(fuzz_tls_handshake)
else
  echo "=== fuzz_tls_handshake: not built (sockserv without TLS), skipped"
fi

mkdir -p "$build/artifacts"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for target in "${targets[@]}"; do
  echo "=== $target: ${duration}s"
  if ! "$build/fuzz/$target" "$build/corpus-$target" -max_total_time="$duration" -max_len=4096 \
       -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$build/artifacts/$target-" 2>"$build/artifacts/$target.log"; then
    failed+=("$target")
    tail -n 40 "$build/artifacts/$target.log"
  fi
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added)' \
    "$build/artifacts/$target.log" || true
done

if ((${#failed[@]})); then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "all fuzz targets ran ${duration}s without a crash"
