#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Every source file names its licence in its first lines (SPDX). Without
# arguments: list the tracked source files that lack the tag, exit 1 if any.
# With --add: add the tag to them (after a #! line where there is one).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=SPDX-License-Identifier:
files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -- '*.cpp' '*.h' '*.c' '*.cc' '*.sh' '*.py' '*.cmake' 'CMakeLists.txt' '*/CMakeLists.txt' x '.ci/*'
  else  # a source tarball: the same files, found on disk
    find . -path ./build -prune -o -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.c' -o -name '*.cc' \
      -o -name '*.sh' -o -name '*.py' -o -name '*.cmake' -o -name CMakeLists.txt -o -path ./x -o -path './.ci/*' \) \
      -print | sed 's|^\./||'
  fi | while read -r f; do [ -f "$f" ] && echo "$f"; done
}
missing=()
while read -r f; do
  head -n 3 "$f" | grep -q "$TAG" || missing+=("$f")
done < <(files)
if [ "${1:-}" = --add ]; then
  for f in "${missing[@]}"; do
    case "$f" in
      *.cpp|*.h|*.c|*.cc) line="// $TAG BSD-2-Clause" ;;
      *) line="# $TAG BSD-2-Clause" ;;
    esac
    if head -n 1 "$f" | grep -q '^#!'; then
      sed -i "1a $line" "$f"
    else
      sed -i "1i $line" "$f"
    fi
  done
  exit 0
fi
if ((${#missing[@]})); then
  printf 'spdx: no SPDX-License-Identifier in %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "spdx: $(files | wc -l) files tagged"
