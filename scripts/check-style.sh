#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when a tracked C++ file is not clang-formatted, or breaks the hard size limits of
# STYLE.md (.cpp 600 lines, public header 300 code lines, test 500, example 150), or when a
# docs/ path named anywhere in the tree does not exist (scripts/check-doc-paths.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files '*.cpp' '*.hpp')
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run clang-format -i $f)"
    status=1
  fi
done
code_lines() { grep -v -E '^\s*(//|$)' "$1" | wc -l; }
for f in $files; do
  limit=""
  case "$f" in
    tests/*) limit=500 ;;
    examples/*) limit=150 ;;
    include/*) limit=300 ;;
    *.cpp) limit=600 ;;
  esac
  [ -z "$limit" ] && continue
  n=$(code_lines "$f")
  if [ "$n" -gt "$limit" ]; then
    echo "too long: $f has $n lines of code (limit $limit)"
    status=1
  fi
done
scripts/check-doc-paths.sh || status=1
[ $status -eq 0 ] && echo "style check: formatted, within size limits, no dangling docs/ paths"
exit $status
