#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the API reference with Doxygen (docs/reference/Doxyfile.in) into a temporary folder
# and fails, listing them, on any warning: an undocumented public name, a broken doc command,
# a @param that names no parameter. Run by .ci/run; takes a few seconds.
#   scripts/check-docs.sh              every public header and the main page
#   scripts/check-docs.sh PATH...      only these headers or folders (while documenting them)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v doxygen >/dev/null || { echo "check-docs: doxygen is missing (scripts/bootstrap.sh ci)"; exit 1; }
# A comment right after `/// @{` is dropped by Doxygen 1.9.4 without a warning (unless the group
# directly follows another's `@}`): the group's comment goes before `@{`.
lost=$(grep -rn -A1 --include='*.hpp' '^ *///  *@{ *$' include/sockserv |
  grep -E '^[^:]+-[0-9]+- *///' | grep -v '@}' || true)
if [ -n "$lost" ]; then
  echo "$lost"
  echo "check-docs: a group's comment after \`/// @{\` is lost: put it before the \`@{\`"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's/^project(sockserv VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
{
  sed -e "s|@SOCKSERV_DOCS_SOURCE_DIR@|$PWD|g" -e "s|@SOCKSERV_DOCS_OUTPUT_DIR@|$work|g" \
    -e "s|@SOCKSERV_DOCS_VERSION@|$version|g" docs/reference/Doxyfile.in
  echo "WARN_LOGFILE = $work/warnings.log"
  if [ $# -gt 0 ]; then
    printf 'INPUT = %s\n' "$(printf '%s ' "$@")"
    echo "USE_MDFILE_AS_MAINPAGE ="
  fi
} >"$work/Doxyfile"
status=0
doxygen "$work/Doxyfile" >"$work/doxygen.out" 2>&1 || status=$?
if [ -s "$work/warnings.log" ]; then
  # Doxygen reports some warnings twice (once per output pass): each is listed once.
  sed "s|$PWD/||" "$work/warnings.log" | awk '!seen[$0]++' | tee "$work/unique.log"
  echo "check-docs: $(grep -c -E ": (warning|error): " "$work/unique.log" || true) Doxygen warnings" \
    "(docs/reference/README.md says what each public name's comment must hold)"
  exit 1
fi
if [ $status -ne 0 ]; then
  cat "$work/doxygen.out"
  echo "check-docs: doxygen failed (exit $status)"
  exit 1
fi
echo "check-docs: every public name is documented, no Doxygen warnings"
