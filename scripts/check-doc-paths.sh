#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when a tracked header, source, script, CMake file or document names a path under the
# docs folder that does not exist (issue 13: event_loop.hpp once pointed to a design document
# that was never written). A path is the text from "docs/" up to the first character that
# cannot be part of a file name here; a trailing '.' or ',' ends the sentence, not the path.
# Run by scripts/check-style.sh, so CI checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files '*.hpp' '*.cpp' '*.h' '*.md' '*.sh' '*.cmake' '*.in' 'CMakeLists.txt' \
  '*/CMakeLists.txt' '.ci/*' 'scripts/*' | sort -u)
for f in $files; do
  [ -f "$f" ] || continue
  # -n: line numbers; the look-behind skips paths that merely end in docs/ (usr/share/docs/).
  while IFS=: read -r line path; do
    path=${path%%[.,]}
    path=${path%%[.,]}
    [ -e "$path" ] && continue
    echo "dangling reference: $f:$line names $path, which does not exist"
    status=1
  done < <(grep -noP '(?<![A-Za-z0-9_./-])docs/[A-Za-z0-9_./-]*' "$f" || true)
done
[ $status -eq 0 ] && echo "doc paths: every docs/ path named in the tree exists"
exit $status
